//go:build unix

package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// testMaster is m2m-ssh's own master (package mux's server) in front of
// an in-process SSH server whose program echoes its input and exits 3:
// fast, and OpenSSH's master is the end-to-end tests' business.
type testMaster struct {
	path   string
	server *mux.Server
	ln     *mux.Listener
}

func startTestMaster(t *testing.T) *testMaster {
	t.Helper()
	srv := sshtest.StartServer(t, sshtest.ServerConfig{Run: func(kind, arg string, ch ssh.Channel) int {
		io.Copy(ch, ch)
		return 3
	}})
	client, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	dir, err := os.MkdirTemp("", "m2m-mux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &testMaster{path: filepath.Join(dir, "cm")}
	if m.ln, err = mux.Listen(m.path); err != nil {
		t.Fatal(err)
	}
	m.server = &mux.Server{Open: func(context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
		return client.OpenChannel("session", nil)
	}}
	go m.server.Serve(m.ln)
	t.Cleanup(m.stop)
	return m
}

// stop ends the master as a crash would, but leaves no socket: the next
// connect finds nobody.
func (m *testMaster) stop() {
	m.ln.Close()
	m.server.Close()
}

// directCounter is a Direct that counts its calls and fails with err.
type directCounter struct {
	calls atomic.Int32
	err   error
}

func (d *directCounter) direct(context.Context) (*Dialer, error) {
	d.calls.Add(1)
	return nil, d.err
}

// permanentErr is a direct connection refused for good (credentials).
type permanentErr struct{}

func (permanentErr) Error() string   { return "the server refused every identity" }
func (permanentErr) Permanent() bool { return true }

func TestSharingRides(t *testing.T) {
	m := startTestMaster(t)
	d := &directCounter{err: errors.New("must not be called")}
	s := &Sharing{Target: &sshcfg.Target{Alias: "box", ControlPath: m.path}, Program: Program{Command: "echo"}, Direct: d.direct}
	r := sshtest.Within(t, testBound, func() Remote {
		r, err := s.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	})
	defer r.Close()
	if _, err := io.WriteString(r, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line := sshtest.Within(t, testBound, func() string {
		l, _ := bufio.NewReader(r).ReadString('\n')
		return l
	})
	if line != "ping\n" {
		t.Fatalf("read %q through the master, want the echo", line)
	}
	if err := r.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var ee *ExitError
	if err := sshtest.Within(t, testBound, r.Wait); !errors.As(err, &ee) || ee.Status != 3 {
		t.Fatalf("Wait = %v, want exit status 3", err)
	}
	var se *SignalError
	if err := r.Signal("TERM"); !errors.As(err, &se) || !se.Shared {
		t.Fatalf("Signal = %v, want a SignalError for a shared session", err)
	}
	if n := d.calls.Load(); n != 0 {
		t.Fatalf("Direct called %d times while a master was there", n)
	}
}

// route's decisions: which connects go directly, which ride, which are
// refused.
func TestSharingRoute(t *testing.T) {
	dir, err := os.MkdirTemp("", "m2m-mux")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := startTestMaster(t)
	open := startTestMaster(t)
	if err := os.Chmod(open.path, 0o666); err != nil {
		t.Fatal(err)
	}
	direct := errors.New("direct connection made")
	for _, tc := range []struct {
		name   string
		path   string
		master sshcfg.ControlMaster
		direct bool   // Direct is called
		want   string // in the error when Direct is not
	}{
		{name: "no ControlPath", direct: true},
		{name: "nobody there", path: filepath.Join(dir, "none"), direct: true},
		{name: "ControlMaster yes listens rather than rides", path: m.path, master: sshcfg.ControlMasterYes, direct: true},
		{name: "ControlMaster ask", path: m.path, master: sshcfg.ControlMasterAsk, direct: true},
		{name: "not a socket", path: regular, want: "is not a socket"},
		{name: "open to all", path: open.path, want: "accessible to group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &directCounter{err: direct}
			s := &Sharing{Target: &sshcfg.Target{Alias: "box", ControlPath: tc.path, ControlMaster: tc.master}, Direct: d.direct}
			err := sshtest.Within(t, testBound, func() error {
				_, err := s.Connect(context.Background())
				return err
			})
			if tc.direct {
				if !errors.Is(err, direct) || d.calls.Load() == 0 {
					t.Fatalf("Connect = %v after %d direct tries; want the direct connection", err, d.calls.Load())
				}
				return
			}
			var se *mux.SocketError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || d.calls.Load() != 0 {
				t.Fatalf("Connect = %v after %d direct tries; want the socket refused (%s)", err, d.calls.Load(), tc.want)
			}
			if !verdict.Permanent(err) || verdict.Hint(err) == "" {
				t.Fatalf("a refused socket must be permanent and say what to do: %v", err)
			}
		})
	}
}

// A master that goes away under a session: the session ends without an
// exit status, saying why, and the next connect goes directly; when that
// fails, the error says the shared connection ended and is as permanent
// as the direct failure.
func TestSharingMasterGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		direct    error
		permanent bool
	}{
		{"direct refused for good", permanentErr{}, true},
		{"direct may heal", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startTestMaster(t)
			d := &directCounter{err: tc.direct}
			s := &Sharing{Target: &sshcfg.Target{Alias: "box", ControlPath: m.path}, Direct: d.direct}
			r, err := s.Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			m.stop()
			n := sshtest.Within(t, testBound, func() int64 {
				n, _ := io.Copy(io.Discard, r)
				return n
			})
			if n != 0 {
				t.Fatalf("read %d bytes from a session that was never written to", n)
			}
			var gone *MasterGoneError
			if err := sshtest.Within(t, testBound, r.Wait); !errors.Is(err, ErrNoExitStatus) || !errors.As(err, &gone) {
				t.Fatalf("Wait = %v, want no exit status because the master went", err)
			}
			_, err = s.Connect(context.Background())
			if !errors.As(err, &gone) || !gone.Ended || !errors.Is(err, tc.direct) || d.calls.Load() != 1 {
				t.Fatalf("Connect = %v after %d direct tries; want MasterGoneError with the direct failure", err, d.calls.Load())
			}
			want := "the shared connection at " + m.path + " ended; log in again with `ssh -M -S " + m.path + " -fN box`"
			if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %q does not start with %q", err, want)
			}
			if verdict.Permanent(err) != tc.permanent {
				t.Fatalf("Permanent = %v, want %v", verdict.Permanent(err), tc.permanent)
			}
		})
	}
}
