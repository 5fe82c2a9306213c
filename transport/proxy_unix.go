//go:build unix

package transport

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the command in a process group of its own, so that
// ending it ends what its shell started too.
func ownGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(c *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	syscall.Kill(-c.Process.Pid, sig)
}
