//go:build !unix

package transport

import "os/exec"

func ownGroup(*exec.Cmd) {}

// signalGroup can only kill the command itself here.
func signalGroup(c *exec.Cmd, _ bool) { c.Process.Kill() }
