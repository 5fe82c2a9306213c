//go:build unix

package sshcfg

import (
	"os/exec"
	"syscall"
)

// killGroup makes the timeout kill what the shell started too, not only
// the shell.
func killGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
