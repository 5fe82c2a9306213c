//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// exitBound is how long m2m-ssh may take to exit after a signal before
// the test calls it a hang: ShutdownBound, with room for a busy machine.
const exitBound = 3 * time.Second

// waitExit waits for m2m-ssh to exit within d and returns its exit code.
// Its stderr is complete once this returns.
func (h *rawHost) waitExit(d time.Duration) int {
	h.t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case <-done:
		return h.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		h.t.Fatalf("m2m-ssh did not exit within %s", d)
	}
	return 0
}

// wantError checks that the next answer is an error with code for one of
// ids, and returns its id.
func (h *rawHost) wantError(within time.Duration, code int, ids ...float64) float64 {
	h.t.Helper()
	m := h.recv(within)
	e, _ := m["error"].(map[string]any)
	id, _ := m["id"].(float64)
	if e == nil || e["code"] != float64(code) || !containsID(ids, id) {
		h.t.Fatalf("answer %v; want error %d for one of %v", m, code, ids)
	}
	return id
}

func containsID(ids []float64, id float64) bool {
	for _, i := range ids {
		if i == id {
			return true
		}
	}
	return false
}

// signalWorld is a world whose sshd honours signal requests: its logins
// are not root's, for OpenSSH before 9.8 refuses to signal a root login's
// program (it runs it without privilege separation).
type signalWorld struct {
	*world
	login *user.User
}

func newSignalWorld(t *testing.T) *signalWorld {
	t.Helper()
	u := sshtest.UnprivilegedUser(t)
	return &signalWorld{world: newWorldAs(t, u.Username), login: u}
}

// pidfile is a path the remote program, running as the login user, can
// write its pid to.
func (w *signalWorld) pidfile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(sshtest.UserDir(t, w.login), name)
}

// hostileExec is w.hostile with the login shell replaced by the program:
// sshd signals the session's process group but forgets the session once
// its first process exits, so a program the shell forks (dash does, for
// "sh -c cmd") outlives a TERM that ends the shell, and KILL is then
// refused (TestHostileSignalsShellEnds).
func (w *signalWorld) hostileExec(mode string, args ...string) []string {
	a := w.hostile(mode, args...)
	a[len(a)-1] = "exec " + a[len(a)-1]
	return a
}

// stopped checks that the server delivered m2m-ssh's signal requests and
// that the remote program pid is gone within exitBound.
func stopped(t *testing.T, stderr string, pid int) {
	t.Helper()
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if strings.Contains(stderr, "refused to signal") {
		t.Fatalf("the server refused to signal a non-root login's program:\n%s", stderr)
	}
	goneWithin(t, pid, exitBound)
}

// goneWithin waits at most d for process pid to end. The test runs as
// root or as the login user, so kill(pid, 0) fails only with ESRCH, once
// the process is gone.
func goneWithin(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := syscall.Kill(pid, 0)
		if err == syscall.ESRCH {
			return
		}
		if err != nil {
			t.Fatalf("kill(%d, 0): %v", pid, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote process %d still runs %s after the session", pid, d)
		}
		time.Sleep(10 * time.Millisecond) // polling the process table
	}
}

// waitFile waits for another process to create path.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond) // polling a file another process writes
	}
}

// A signal with requests in flight: each is answered as lost, m2m-ssh
// exits within the bound and says why, and the remote is gone.
func TestHostileSignalsInFlight(t *testing.T) {
	w := newSignalWorld(t)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		name := signalName(sig)
		t.Run(name, func(t *testing.T) {
			pidfile := w.pidfile(t, "testmcp.pid")
			h := startRaw(t, w.command("buildbox", "--", "TESTMCP_PIDFILE="+pidfile, bins.testmcp))
			h.initialize()
			h.call(1, "sleep", `{"millis":60000}`)
			h.call(2, "sleep", `{"millis":60000}`)
			// Frames arrive in order: the echo's answer proves the
			// sleeps reached the server.
			h.echo(3, 10*time.Second)
			pid := readPid(t, pidfile)
			h.cmd.Process.Signal(sig)
			got := []float64{h.wantError(exitBound, bridge.CodeConnectionLost, 1, 2)}
			got = append(got, h.wantError(exitBound, bridge.CodeConnectionLost, 1, 2))
			if got[0] == got[1] {
				t.Fatalf("request %v answered twice", got[0])
			}
			code := h.waitExit(exitBound)
			t.Logf("exit status %d", code)
			if s := h.stderr.String(); !strings.Contains(s, "shutting down") || !strings.Contains(s, "signal="+name) {
				t.Fatalf("the log does not say a %s ended the session:\n%s", name, s)
			}
			stopped(t, h.stderr.String(), pid)
		})
	}
}

// SIGTERM while m2m-ssh is blocked writing a large frame to a remote that
// stopped reading in the middle of it: the frame's request is answered,
// and m2m-ssh exits within the bound.
func TestHostileSignalsBlockedWrite(t *testing.T) {
	w := newSignalWorld(t)
	pidfile := w.pidfile(t, "deaf.pid")
	h := startRaw(t, w.command(w.hostile("sig-deaf", pidfile)...))
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"deaf"}`)
	if m := h.recv(10 * time.Second); m["id"] != 1.0 || m["result"] == nil {
		t.Fatalf("deaf = %v", m)
	}
	pid := readPid(t, pidfile)
	// Far more than the SSH window and the pipes hold: m2m-ssh blocks
	// in the middle of it, once it has read it whole.
	frame := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`+"\n", sshtest.Blob(16<<20))
	written := make(chan error, 1)
	go func() {
		_, err := io.WriteString(h.in, frame)
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			t.Fatalf("writing the large frame: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("m2m-ssh did not read the large frame")
	}
	waitFile(t, pidfile+".read")
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.wantError(exitBound, bridge.CodeConnectionLost, 2)
	t.Logf("exit status %d", h.waitExit(exitBound))
	stopped(t, h.stderr.String(), pid)
}

// The MCP host's shutdown: stdin closed, then SIGTERM while m2m-ssh waits
// for a remote that ignores EOF and traps TERM. The signal cuts the wait
// short, and the remote is killed.
func TestHostileSignalsStdinCloseThenSIGTERM(t *testing.T) {
	w := newSignalWorld(t)
	pidfile := w.pidfile(t, "trap.pid")
	h := startRaw(t, w.command(w.hostileExec("sig-trap-term", pidfile)...))
	h.initialize()
	pid := readPid(t, pidfile)
	h.in.Close()
	waitFile(t, pidfile+".eof")
	h.cmd.Process.Signal(syscall.SIGTERM)
	t.Logf("exit status %d", h.waitExit(exitBound))
	stopped(t, h.stderr.String(), pid)
}

// A remote that ignores EOF and SIGHUP does not outlive the session: the
// server is asked to signal it TERM, which ends it; one that traps TERM
// too is killed. m2m-ssh's exit status is the remote's, as the server
// reports it: killed by that signal.
func TestHostileSignalsNothingLeftBehind(t *testing.T) {
	w := newSignalWorld(t)
	for _, tc := range []struct {
		mode   string
		exec   bool // whether the program replaces the login shell
		signal syscall.Signal
		logs   string
	}{
		{"sig-linger", false, syscall.SIGTERM, "asking the server to stop it"},
		{"sig-trap-term", true, syscall.SIGKILL, "asking the server to kill it"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			pidfile := w.pidfile(t, "pid")
			args := w.hostile(tc.mode, pidfile)
			if tc.exec {
				args = w.hostileExec(tc.mode, pidfile)
			}
			h := startRaw(t, w.command(args...))
			h.initialize()
			pid := readPid(t, pidfile)
			h.in.Close()
			// The whole calm schedule, with room for a busy machine.
			code := h.waitExit(15 * time.Second)
			stopped(t, h.stderr.String(), pid)
			t.Logf("remote %d (run as %s) gone; m2m-ssh exit status %d", pid, w.login.Username, code)
			if s := h.stderr.String(); !strings.Contains(s, tc.logs) {
				t.Fatalf("the log does not say %q:\n%s", tc.logs, s)
			}
			if want := 128 + int(tc.signal); code != want {
				t.Fatalf("exit status %d; want %d, the remote killed by %s\n%s", code, want, signalName(tc.signal), h.stderr.String())
			}
		})
	}
}

// A program that traps TERM, started by a login shell that stays as its
// parent: TERM ends the shell, sshd then has no process to send KILL to
// and refuses it, and the program stays. m2m-ssh still ends, and says the
// program may keep running.
func TestHostileSignalsShellEnds(t *testing.T) {
	t.Parallel() // waits out the product's timers; shares nothing with the other tests
	w := newSignalWorld(t)
	pidfile := w.pidfile(t, "pid")
	// "; :" keeps every shell from replacing itself with the program.
	h := startRaw(t, w.command("buildbox", "--", bins.hostile+" sig-trap-term "+pidfile+"; :"))
	h.initialize()
	pid := readPid(t, pidfile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	h.in.Close()
	t.Logf("exit status %d", h.waitExit(15*time.Second))
	if s := h.stderr.String(); !strings.Contains(s, "refused to signal") || !strings.Contains(s, "signal=KILL") || !strings.Contains(s, "may keep running") {
		t.Fatalf("the log does not say KILL was refused and the remote may keep running:\n%s", s)
	}
	w.sshd.WaitLog(t, "no pid for session") // sshd refused KILL for want of a pid
	if syscall.Kill(pid, 0) == nil {
		t.Logf("as the log says, the program %d outlived the session", pid)
	}
}

// Where the server will not signal the remote (OpenSSH refuses for a
// subsystem), m2m-ssh still ends, and says the program may keep running.
func TestHostileSignalsRefused(t *testing.T) {
	t.Parallel() // waits out the product's timers; shares nothing with the other tests
	w := newWorld(t)
	pidfile := filepath.Join(t.TempDir(), "linger.pid")
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{w.key.Public},
		Subsystems:     map[string]string{"linger": bins.hostile + " sig-linger " + pidfile},
	})
	kh := sshtest.WriteFile(t, t.TempDir(), "known_hosts", sshd.KnownHosts()...)
	h := startRaw(t, w.command("-o", fmt.Sprintf("Port=%d", sshd.Port), "-o", "UserKnownHostsFile="+kh, "--subsystem", "linger", "buildbox"))
	h.initialize()
	pid := readPid(t, pidfile)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	h.in.Close()
	t.Logf("exit status %d", h.waitExit(15*time.Second))
	if s := h.stderr.String(); !strings.Contains(s, "refused to signal") || !strings.Contains(s, "may keep running") {
		t.Fatalf("the log does not say the remote may keep running:\n%s", s)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Logf("as the log says, the subsystem's process %d outlived the session", pid)
	}
}
