//go:build !unix

package sshcfg

import "os/exec"

// killGroup leaves the default: the timeout kills the shell.
func killGroup(*exec.Cmd) {}
