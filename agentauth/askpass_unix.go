//go:build unix

package agentauth

import (
	"os/exec"
	"syscall"
)

// ownGroup runs the askpass program in a process group of its own and
// kills the whole group when it is stopped: a shell script's children
// die with it instead of outliving the question.
func ownGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
