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
	"golang.org/x/sys/unix"
)

// sharedMaster is an OpenSSH master a test started with ssh -M.
type sharedMaster struct {
	t    *testing.T
	ssh  string
	path string // its control socket
	pid  int
	log  string // the file its stderr goes to
}

// masterStart bounds ssh -M's login and setup, on a loaded machine.
const masterStart = 30 * time.Second

// startMaster runs `ssh -M -S PATH -fN args...` in env and returns once it
// listens: with -f, ssh goes to the background only when it has logged in
// and made its control socket, so its exit is the signal. The master is
// ended when the test ends.
func startMaster(t *testing.T, env []string, args ...string) *sharedMaster {
	t.Helper()
	// A Unix socket's path is at most 107 bytes: t.TempDir's can be
	// longer.
	dir, err := os.MkdirTemp("", "m2m-cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return startMasterAt(t, filepath.Join(dir, "cm"), env, args...)
}

// startMasterAt is startMaster with the control socket at path.
func startMasterAt(t *testing.T, path string, env []string, args ...string) *sharedMaster {
	t.Helper()
	ssh := sshtest.LookPath(t, "ssh")
	m := &sharedMaster{t: t, ssh: ssh, path: path, log: path + ".log"}
	// A file, not a pipe: the master in the background keeps it open,
	// and exec would wait for a pipe's EOF.
	logFile, err := os.Create(m.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), masterStart)
	defer cancel()
	cmd := exec.CommandContext(ctx, ssh, append([]string{"-M", "-S", m.path, "-fN", "-o", "ControlPersist=no", "-o", "LogLevel=ERROR"}, args...)...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh -M %v: %v\n%s", args, err, m.logText())
	}
	m.pid = m.check()
	if m.pid <= 0 {
		t.Fatalf("ssh -O check found no master at %s:\n%s", m.path, m.logText())
	}
	t.Cleanup(m.kill)
	return m
}

var masterRunning = regexp.MustCompile(`Master running \(pid=(\d+)\)`)

// check is ssh -O check: the master's pid, or 0 when none answers.
func (m *sharedMaster) check() int {
	ctx, cancel := context.WithTimeout(context.Background(), masterStart)
	defer cancel()
	out, _ := exec.CommandContext(ctx, m.ssh, "-S", m.path, "-O", "check", "master").CombinedOutput()
	if sm := masterRunning.FindSubmatch(out); sm != nil {
		pid, _ := strconv.Atoi(string(sm[1]))
		return pid
	}
	return 0
}

// kill ends the master at once, as a crash or a reboot of the laptop
// would, and waits until it is gone. Its socket stays behind: stale.
func (m *sharedMaster) kill() {
	if m.pid <= 0 {
		return
	}
	pid := m.pid
	m.pid = 0
	// Not our child (ssh -f's is reparented), so not ours to wait for:
	// a pidfd becomes readable when it has exited.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		m.t.Fatalf("killing the master: %v", err)
	}
	sshtest.Within(m.t, masterStart, func() error {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(masterStart.Milliseconds()))
		return err
	})
}

func (m *sharedMaster) logText() string {
	b, _ := os.ReadFile(m.log)
	return string(b)
}

// masterEnv is ssh's environment for the world's master: the agent that
// holds the user's key.
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
