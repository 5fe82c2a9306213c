//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
)

// stuckHost is an MCP host that stops reading m2m-ssh's stdout: it holds
// the pipe open and never reads it, so once the pipe is full every write
// m2m-ssh makes to the host blocks.
type stuckHost struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *os.File // the read end of m2m-ssh's stdout, never read
	stderr *logTail
	exited chan struct{}
}

func startStuck(t *testing.T, cmd *exec.Cmd) *stuckHost {
	t.Helper()
	h := &stuckHost{t: t, cmd: cmd, stderr: newLogTail(), exited: make(chan struct{})}
	cmd.Stderr = h.stderr
	var err error
	if h.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	var w *os.File
	if h.out, w, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		defer close(h.exited)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		h.in.Close()
		cmd.Process.Kill()
		<-h.exited
		h.out.Close()
		if t.Failed() {
			t.Logf("m2m-ssh stderr:\n%s", h.stderr)
		}
	})
	return h
}

// waitFull waits for m2m-ssh's stdout pipe to be full: from then on its
// writes to the host block. It probes with a non-blocking write of one
// byte through a file description of its own (the host never reads what
// it adds): a pipe refuses it only when it has no byte of room left, and
// m2m-ssh, whose writes fill all there is, is waiting for the host.
func (h *stuckHost) waitFull() {
	h.t.Helper()
	probe, err := syscall.Open(fmt.Sprintf("/proc/self/fd/%d", h.out.Fd()), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		h.t.Fatalf("opening m2m-ssh's stdout pipe to probe it: %v", err)
	}
	defer syscall.Close(probe)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := syscall.Write(probe, []byte{'\n'})
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			h.t.Fatalf("probing m2m-ssh's stdout pipe: %v", err)
		}
		if time.Now().After(deadline) {
			h.t.Fatal("m2m-ssh's stdout pipe is not full after 30 s: the flood does not reach the host")
		}
		time.Sleep(10 * time.Millisecond) // polling a pipe another process fills
	}
}

// waitExit waits at most d for m2m-ssh to exit and returns its status and
// how long it took from start.
func (h *stuckHost) waitExit(start time.Time, d time.Duration) (int, time.Duration) {
	h.t.Helper()
	select {
	case <-h.exited:
		return h.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(d):
		h.t.Fatalf("m2m-ssh did not exit within %s of the signal", d)
	}
	return 0, 0
}

// flooded starts m2m-ssh behind a remote that floods notifications, with
// a host that stops reading, and returns once m2m-ssh is blocked writing
// to the host.
func flooded(t *testing.T) *stuckHost {
	t.Helper()
	w := newWorld(t)
	h := startStuck(t, w.command(w.hostile("flood-stdout")...))
	if _, err := io.WriteString(h.in, `{"jsonrpc":"2.0","id":1,"method":"flood"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	h.waitFull()
	return h
}

// SIGTERM while m2m-ssh is blocked writing to a host that does not read
// it: a clean shutdown cannot finish (its answers to the host block too),
// so the watchdog ends the process after bridge.ShutdownBound, with
// m2m-ssh's own exit status, and says why.
func TestHostileSignalsWatchdog(t *testing.T) {
	h := flooded(t)
	start := time.Now()
	h.cmd.Process.Signal(syscall.SIGTERM)
	code, took := h.waitExit(start, exitBound)
	t.Logf("exit status %d, %s after SIGTERM (bound %s)", code, took.Round(time.Millisecond), bridge.ShutdownBound)
	if code != bridge.ExitStatus {
		t.Fatalf("exit status %d; want %d, the watchdog's", code, bridge.ExitStatus)
	}
	if took < bridge.ShutdownBound {
		t.Fatalf("exited %s after SIGTERM, before the bound %s: not the watchdog", took, bridge.ShutdownBound)
	}
	if s := h.stderr.String(); !strings.Contains(s, "shutting down took too long") {
		t.Fatalf("the log does not say why m2m-ssh exited:\n%s", s)
	}
}

// A second signal while a shutdown is under way ends the process at once,
// with the status a shell shows for a process that signal killed.
func TestHostileSignalsSecond(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(signalName(sig), func(t *testing.T) {
			h := flooded(t)
			h.cmd.Process.Signal(syscall.SIGTERM)
			h.stderr.waitFor(t, "shutting down", exitBound)
			start := time.Now()
			h.cmd.Process.Signal(sig)
			code, took := h.waitExit(start, exitBound)
			t.Logf("exit status %d, %s after the second signal", code, took.Round(time.Millisecond))
			if want := 128 + int(sig); code != want {
				t.Fatalf("exit status %d; want %d, for a second %s", code, want, signalName(sig))
			}
			if s := h.stderr.String(); !strings.Contains(s, "a second signal came") {
				t.Fatalf("the log does not say why m2m-ssh exited:\n%s", s)
			}
		})
	}
}
