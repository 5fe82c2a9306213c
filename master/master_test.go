//go:build unix

package master

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"golang.org/x/crypto/ssh"
)

// running is a master under test: its readiness message, and Run's
// result once it ends.
type running struct {
	ready  readiness
	result chan error
}

// startMaster runs m and waits for its readiness message.
func startMaster(t *testing.T, m *Master) *running {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	run := &running{result: make(chan error, 1)}
	go func() { run.result <- m.Run(ctx, w) }()
	run.ready = sshtest.Within(t, hang, func() readiness {
		m, err := readReady(r)
		if err != nil {
			t.Errorf("readiness: %v", err)
		}
		return m
	})
	return run
}

func (r *running) end(t *testing.T) error {
	t.Helper()
	return sshtest.Within(t, hang, func() error { return <-r.result })
}

func shortPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "m2m-master")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "cm")
}

func inProcess(t *testing.T) (*sshtest.Server, func(context.Context) (*ssh.Client, error)) {
	srv := sshtest.StartServer(t, sshtest.ServerConfig{Run: func(kind, arg string, ch ssh.Channel) int {
		io.WriteString(ch, kind+" "+arg+"\n")
		return 0
	}})
	return srv, func(context.Context) (*ssh.Client, error) { return srv.Dial() }
}

func TestRunDialFails(t *testing.T) {
	path := shortPath(t)
	m := &Master{Path: path, Dial: func(context.Context) (*ssh.Client, error) { return nil, lastingErr{} }}
	r := startMaster(t, m)
	if r.ready.Error != "Host key verification failed" || r.ready.Hint != "run ssh once" || !r.ready.Permanent {
		t.Fatalf("readiness %+v", r.ready)
	}
	if err := r.end(t); !errors.As(err, new(lastingErr)) {
		t.Fatalf("Run = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a master that failed left %s: %v", path, err)
	}
}

func TestRunListenFails(t *testing.T) {
	path := shortPath(t)
	os.WriteFile(path, nil, 0o600) // something that is not a socket
	_, dial := inProcess(t)
	r := startMaster(t, &Master{Path: path, Dial: dial})
	if r.ready.Error == "" {
		t.Fatalf("a master that cannot listen said it is up: %+v", r.ready)
	}
	r.end(t)
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the file in the way was touched: %v %v", fi, err)
	}
}

func TestRunEnds(t *testing.T) {
	cases := []struct {
		name string
		// act ends the master, from a client at path or on the server.
		act  func(t *testing.T, path string, srv *sshtest.Server)
		want func(error) bool
	}{
		{"idle", func(t *testing.T, path string, _ *sshtest.Server) {
			session(t, path) // ControlPersist's clock starts when it ends
		}, func(err error) bool { return errors.Is(err, ErrIdle) }},
		{"exit", func(t *testing.T, path string, _ *sshtest.Server) {
			c := dialMaster(t, path)
			defer c.Close()
			if err := c.Exit(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, func(err error) bool { return errors.Is(err, ErrTerminated) }},
		{"connection dies", func(t *testing.T, _ string, srv *sshtest.Server) {
			srv.Drop()
		}, func(err error) bool { return errors.As(err, new(*ConnectionError)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := shortPath(t)
			srv, dial := inProcess(t)
			r := startMaster(t, &Master{Path: path, Dial: dial, Persist: Persist{Idle: time.Millisecond}})
			if r.ready.PID != os.Getpid() || r.ready.Error != "" {
				t.Fatalf("readiness %+v", r.ready)
			}
			pid, err := dialMaster(t, path).Check(context.Background())
			if err != nil || int(pid) != os.Getpid() {
				t.Fatalf("alive check: %d, %v", pid, err)
			}
			c.act(t, path, srv)
			if err := r.end(t); !c.want(err) {
				t.Fatalf("Run = %v (%T)", err, err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the socket outlived its master: %v", err)
			}
		})
	}
}

func dialMaster(t *testing.T, path string) *mux.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := mux.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// session runs "exec hello" through the master and checks its output.
func session(t *testing.T, path string) {
	t.Helper()
	c := dialMaster(t, path)
	stdinR, stdinW, _ := os.Pipe()
	stdoutR, stdoutW, _ := os.Pipe()
	stderrR, stderrW, _ := os.Pipe()
	defer stderrR.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	s, err := c.NewSession(ctx, mux.SessionRequest{Command: "hello"}, stdinR, stdoutW, stderrW)
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		t.Fatal(err)
	}
	stdinW.Close()
	out := sshtest.Within(t, hang, func() string {
		b, _ := io.ReadAll(stdoutR)
		return string(b)
	})
	if status, err := s.Wait(); err != nil || status != 0 || !strings.Contains(out, "exec hello") {
		t.Fatalf("session: status %d, %v, output %q", status, err, out)
	}
}
