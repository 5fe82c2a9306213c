//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// masterStart bounds ssh -M's login and setup, and its end, on a loaded
// machine.
const masterStart = 30 * time.Second

// startMaster is an OpenSSH master logged in to the world's sshd with key
// (sshtest.StartMaster), which m2m-ssh rides with -o ControlPath.
func (w *world) startMaster(t *testing.T, key sshtest.Key) *sshtest.Master {
	t.Helper()
	return sshtest.StartMaster(t, w.sshd, key)
}

// killMaster ends m at once, as a crash or a laptop's reboot would, and
// waits until it is gone. Its socket stays behind: stale.
func killMaster(t *testing.T, m *sshtest.Master) {
	t.Helper()
	m.Kill()
	sshtest.WaitPidExit(t, m.Pid, masterStart)
}

var masterRunning = regexp.MustCompile(`Master running \(pid=(\d+)\)`)

// startMasterAt runs `ssh -M -S path -fN args...` in env, for the masters
// sshtest.StartMaster does not make: one at a given path (a user logging
// in again after a crash) and one that asks for a password through
// SSH_ASKPASS (its BatchMode forbids that). With -f, ssh goes to the
// background only when it has logged in and made its socket, so its exit
// is the signal. The master is killed when the test ends.
func startMasterAt(t *testing.T, path string, env []string, args ...string) *sshtest.Master {
	t.Helper()
	ssh := sshtest.LookPath(t, "ssh")
	// A file, not a pipe: the master in the background keeps it open,
	// and exec would wait for a pipe's EOF.
	logPath := path + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logText := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), masterStart)
	defer cancel()
	cmd := exec.CommandContext(ctx, ssh, append([]string{"-M", "-S", path, "-fN", "-o", "ControlPersist=no", "-o", "LogLevel=ERROR"}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh -M %v: %v\n%s", args, err, logText())
	}
	out, _ := exec.CommandContext(ctx, ssh, "-S", path, "-O", "check", "master").CombinedOutput()
	sm := masterRunning.FindSubmatch(out)
	if sm == nil {
		t.Fatalf("ssh -O check found no master at %s: %s\n%s", path, out, logText())
	}
	m := &sshtest.Master{Path: path}
	m.Pid, _ = strconv.Atoi(string(sm[1]))
	t.Cleanup(m.Kill)
	return m
}

// masterEnv is ssh's environment for a master of the world's config: the
// agent that holds the user's key.
func (w *world) masterEnv() []string {
	return []string{"HOME=" + w.dir, "PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + w.agent.Sock}
}

// bareCommand is m2m-ssh with no credentials of its own: no agent, no
// key files, so only a master can get it in.
func (w *world) bareCommand(args ...string) *exec.Cmd {
	return m2mCommand([]string{"HOME=" + w.dir, "PATH=/usr/bin:/bin"},
		append([]string{"-F", w.config, "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes",
			"-o", "IdentityFile=" + filepath.Join(w.dir, "no-such-key")}, args...)...)
}
