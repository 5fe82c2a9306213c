//go:build linux

package mux_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// realMaster is a test sshd and an OpenSSH master connected to it that
// passes M2M_* variables on (SendEnv there, AcceptEnv here).
func realMaster(t *testing.T) (*sshtest.SSHD, *sshtest.Master) {
	t.Helper()
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_ed25519", sshtest.KeyOptions{})
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{key.Public},
		Subsystems:     map[string]string{"cat": "/bin/cat"},
		Extra:          []string{"AcceptEnv M2M_*"},
	})
	return sshd, sshtest.StartMaster(t, sshd, key, "SendEnv M2M_*")
}

func dial(t *testing.T, path string) *mux.Client {
	t.Helper()
	c, err := mux.Dial(timeout(t, hangBound), path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientAgainstOpenSSHMaster(t *testing.T) {
	_, m := realMaster(t)
	cases := []struct {
		name         string
		req          mux.SessionRequest
		input        string
		stdout       string
		stderr       string
		status       int
		stdoutSubstr bool
	}{
		{name: "exec", req: mux.SessionRequest{Command: "echo out; echo err >&2"}, stdout: "out\n", stderr: "err\n"},
		{name: "exit status", req: mux.SessionRequest{Command: "exit 7"}, status: 7},
		{name: "stdin", req: mux.SessionRequest{Command: "tr a-z A-Z"}, input: "abc\n", stdout: "ABC\n"},
		{name: "subsystem", req: mux.SessionRequest{Subsystem: "cat"}, input: "through the subsystem\n", stdout: "through the subsystem\n"},
		{name: "shell", req: mux.SessionRequest{}, input: "echo from-the-shell; exit 5\n", stdout: "from-the-shell\n", status: 5, stdoutSubstr: true},
		{name: "env", req: mux.SessionRequest{Command: `echo "$M2M_ONE/$M2M_TWO"`, Env: []string{"M2M_ONE=1", "M2M_TWO=two words"}}, stdout: "1/two words\n"},
		{name: "env not in SendEnv", req: mux.SessionRequest{Command: `echo "[$OTHER]"`, Env: []string{"OTHER=x"}}, stdout: "[]\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := dial(t, m.Path)
			if v := cl.Version(); v != 4 {
				t.Errorf("Version = %d, want 4", v)
			}
			r := run(t, cl, c.req, strings.NewReader(c.input))
			if r.err != nil {
				t.Fatalf("session: %v (stderr %q)", r.err, r.stderr)
			}
			if r.status != c.status {
				t.Errorf("status = %d, want %d", r.status, c.status)
			}
			if got := string(r.stdout); got != c.stdout && !(c.stdoutSubstr && strings.Contains(got, c.stdout)) {
				t.Errorf("stdout = %q, want %q", got, c.stdout)
			}
			if got := string(r.stderr); got != c.stderr && !c.stdoutSubstr {
				t.Errorf("stderr = %q, want %q", got, c.stderr)
			}
		})
	}
}

// transferSize is the "32 MiB result" of the issue, each way at once.
const transferSize = 32 << 20

func TestClientTransferThroughOpenSSHMaster(t *testing.T) {
	_, m := realMaster(t)
	testTransfer(t, m.Path)
}

func testTransfer(t *testing.T, path string) {
	cl := dial(t, path)
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), transferSize)
	want := sha256.New()
	r := run(t, cl, mux.SessionRequest{Command: "cat"}, io.TeeReader(src, want))
	if r.err != nil || r.status != 0 {
		t.Fatalf("cat: status %d, %v (stderr %q)", r.status, r.err, r.stderr)
	}
	if len(r.stdout) != transferSize {
		t.Fatalf("got %d bytes back, want %d", len(r.stdout), transferSize)
	}
	if got := sha256.Sum256(r.stdout); !bytes.Equal(got[:], want.Sum(nil)) {
		t.Fatal("the bytes that came back differ from those sent")
	}
}

func TestClientMasterKilledMidSession(t *testing.T) {
	_, m := realMaster(t)
	cl := dial(t, m.Path)
	p := newStdio(t)
	s, err := cl.NewSession(timeout(t, hangBound), mux.SessionRequest{Command: "echo started; exec cat"}, p.farIn, p.farOut, p.farErr)
	if err != nil {
		t.Fatal(err)
	}
	p.closeFar()
	line := make([]byte, len("started\n"))
	if _, err := io.ReadFull(p.out, line); err != nil {
		t.Fatalf("reading the session's first line: %v", err)
	}
	m.Kill()
	start := time.Now()
	err = sshtest.Within(t, hangBound, func() error { _, err := s.Wait(); return err })
	if !errors.Is(err, mux.ErrMasterGone) {
		t.Fatalf("Wait after the master was killed: %v, want ErrMasterGone", err)
	}
	t.Logf("Wait returned %v after the kill", time.Since(start))
	m.WaitExit(t, hangBound)
	// What is left is a stale socket: no master.
	_, err = mux.Dial(timeout(t, hangBound), m.Path)
	var nm *mux.NoMasterError
	if !errors.Is(err, mux.ErrNoMaster) || !errors.As(err, &nm) || !nm.Stale {
		t.Fatalf("Dial of the dead master's socket: %v, want a stale ErrNoMaster", err)
	}
}

func TestClientCheckAndExit(t *testing.T) {
	_, m := realMaster(t)
	pid, err := dial(t, m.Path).Check(timeout(t, hangBound))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if int(pid) != m.Pid {
		t.Errorf("Check's pid = %d, ssh -O check says %d", pid, m.Pid)
	}
	if err := dial(t, m.Path).Exit(timeout(t, hangBound)); err != nil {
		t.Fatalf("Exit: %v", err)
	}
	m.WaitExit(t, hangBound)
	if _, err := mux.Dial(timeout(t, hangBound), m.Path); !errors.Is(err, mux.ErrNoMaster) {
		t.Fatalf("Dial after Exit: %v, want ErrNoMaster", err)
	}
}

// TestClientRemoteKilledBySignal pins what OpenSSH's master does with an
// exit-signal: no exit message, the connection closed (ssh exits 255).
func TestClientRemoteKilledBySignal(t *testing.T) {
	_, m := realMaster(t)
	r := run(t, dial(t, m.Path), mux.SessionRequest{Command: "kill -KILL $$"}, nil)
	if !errors.Is(r.err, mux.ErrMasterGone) {
		t.Fatalf("a remote killed by a signal: status %d, %v; want ErrMasterGone as OpenSSH's master sends no status", r.status, r.err)
	}
	// The master itself lives on.
	if _, err := dial(t, m.Path).Check(timeout(t, hangBound)); err != nil {
		t.Fatalf("Check after the signal: %v", err)
	}
}
