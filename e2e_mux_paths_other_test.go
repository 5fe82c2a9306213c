//go:build !linux

package main

import (
	"os/exec"
	"testing"
)

// e2ePath is one way m2m-ssh reaches the world's sshd.
type e2ePath struct {
	name    string
	command func(args ...string) *exec.Cmd
	check   func(t *testing.T, cmd *exec.Cmd)
}

// e2ePaths is the direct connection alone: the tests that start OpenSSH
// masters run on Linux.
func e2ePaths(t *testing.T, w *world) []e2ePath {
	return []e2ePath{{name: "direct", command: w.command, check: func(*testing.T, *exec.Cmd) {}}}
}
