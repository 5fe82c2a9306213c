//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
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

// signalsHonoured reports whether the server delivered m2m-ssh's signal
// requests. Where it refused (OpenSSH before 9.8 refuses a root login's,
// for want of privilege separation), the log must say that the remote may
// keep running, and the test ends the process itself.
func signalsHonoured(t *testing.T, stderr string, pid int) bool {
	t.Helper()
	if !strings.Contains(stderr, "refused to signal") {
		return true
	}
	if !strings.Contains(stderr, "may keep running") {
		t.Fatalf("the server refused the signal and the log does not say the remote may keep running:\n%s", stderr)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return false
}

// refusedSkip is the reason for skipping what a refused signal request
// leaves unchecked.
const refusedSkip = "this sshd refused the signal request (OpenSSH before 9.8 does for a root login): whether the remote is gone cannot be checked here"

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
	w := newWorld(t)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		name := signalName(sig)
		t.Run(name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "testmcp.pid")
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
			if !signalsHonoured(t, h.stderr.String(), pid) {
				t.Skip(refusedSkip)
			}
			gone(t, pid)
		})
	}
}

// SIGTERM while m2m-ssh is blocked writing a large frame to a remote that
// stopped reading in the middle of it: the frame's request is answered,
// and m2m-ssh exits within the bound.
func TestHostileSignalsBlockedWrite(t *testing.T) {
	w := newWorld(t)
	pidfile := filepath.Join(t.TempDir(), "deaf.pid")
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
	if !signalsHonoured(t, h.stderr.String(), pid) {
		t.Skip(refusedSkip)
	}
	gone(t, pid)
}

// The MCP host's shutdown: stdin closed, then SIGTERM while m2m-ssh waits
// for a remote that ignores EOF and traps TERM. The signal cuts the wait
// short, and the remote is killed.
func TestHostileSignalsStdinCloseThenSIGTERM(t *testing.T) {
	w := newWorld(t)
	pidfile := filepath.Join(t.TempDir(), "trap.pid")
	h := startRaw(t, w.command(w.hostile("sig-trap-term", pidfile)...))
	h.initialize()
	pid := readPid(t, pidfile)
	h.in.Close()
	waitFile(t, pidfile+".eof")
	h.cmd.Process.Signal(syscall.SIGTERM)
	t.Logf("exit status %d", h.waitExit(exitBound))
	if !signalsHonoured(t, h.stderr.String(), pid) {
		t.Skip(refusedSkip)
	}
	gone(t, pid)
}

// A remote that ignores EOF and SIGHUP (and one that traps TERM too) does
// not outlive the session: the server is asked to signal it.
func TestHostileSignalsNothingLeftBehind(t *testing.T) {
	w := newWorld(t)
	for _, mode := range []string{"sig-linger", "sig-trap-term"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pidfile := filepath.Join(t.TempDir(), "pid")
			h := startRaw(t, w.command(w.hostile(mode, pidfile)...))
			h.initialize()
			pid := readPid(t, pidfile)
			h.in.Close()
			// The whole calm schedule, with room for a busy machine.
			t.Logf("exit status %d", h.waitExit(15*time.Second))
			if s := h.stderr.String(); !strings.Contains(s, "asking the server to stop it") {
				t.Fatalf("the log does not say the remote was stopped:\n%s", s)
			}
			if !signalsHonoured(t, h.stderr.String(), pid) {
				t.Skip(refusedSkip)
			}
			gone(t, pid)
		})
	}
}

// Where the server will not signal the remote (OpenSSH refuses for a
// subsystem), m2m-ssh still ends, and says the program may keep running.
func TestHostileSignalsRefused(t *testing.T) {
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
