//go:build linux

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// e2ePath is one way m2m-ssh reaches the world's sshd, for tests that
// must pass on each.
type e2ePath struct {
	name    string
	command func(args ...string) *exec.Cmd
	// check says whether cmd, done with, took the path.
	check func(t *testing.T, cmd *exec.Cmd)
}

// e2ePaths are a direct connection with the agent's key, and OpenSSH
// masters with m2m-ssh holding no credentials: one master for buildbox
// (exec and subsystem sessions) and one for buildbox-shell, whose key
// forces the command.
func e2ePaths(t *testing.T, w *world) []e2ePath {
	t.Helper()
	plain := w.startMaster(t, w.key)
	shell := w.startMaster(t, w.shell)
	return []e2ePath{
		{name: "direct", command: w.command, check: func(t *testing.T, cmd *exec.Cmd) {
			if log := cmd.Stderr.(*sshtest.Buffer).String(); strings.Contains(log, "riding the shared connection") {
				t.Errorf("a direct session rode a master:\n%s", log)
			}
		}},
		{name: "master", command: func(args ...string) *exec.Cmd {
			m := plain
			if slices.Contains(args, "buildbox-shell") {
				m = shell
			}
			return w.bareCommand(append([]string{"-o", "ControlPath=" + m.Path}, args...)...)
		}, check: func(t *testing.T, cmd *exec.Cmd) {
			if log := cmd.Stderr.(*sshtest.Buffer).String(); !strings.Contains(log, "riding the shared connection") {
				t.Errorf("the session did not ride the master:\n%s", log)
			}
		}},
	}
}
