//go:build unix

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// fifo makes a named pipe nobody writes to: reading it would block forever.
func fifo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A named pipe as UserKnownHostsFile is refused, not read: the host gets
// an error naming it, quickly.
func TestHostileFileKnownHostsFIFO(t *testing.T) {
	w := newWorld(t)
	kh := fifo(t, w.dir, "known_hosts_fifo")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wantStartFailure(t, ctx, w.command("-o", "UserKnownHostsFile="+kh, "buildbox"),
		"known_hosts file not read: "+kh+" is not a regular file (it is a named pipe)")
}

// A named pipe as the first IdentityFile is skipped with a warning naming
// it; the good key after it logs in.
func TestHostileFileIdentityFIFO(t *testing.T) {
	w := newWorld(t)
	key := fifo(t, w.dir, "id_fifo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := w.command("-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-i", key, "-i", w.key.Path, "buildbox", "--", bins.testmcp)
	s, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer s.Close()
	if _, err := s.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	// Closed, m2m-ssh has exited and its stderr is all copied.
	s.Close()
	if stderr := fmt.Sprint(cmd.Stderr); !strings.Contains(stderr, key+": not a regular file") {
		t.Errorf("stderr does not name %s:\n%s", key, stderr)
	}
}

// accept-new with /dev/zero as UserKnownHostsFile refuses the file at
// once (neither read nor appended to) and carries on, as OpenSSH does when
// it cannot record a key; memory stays small.
func TestHostileFileAcceptNewDevZero(t *testing.T) {
	w := newWorld(t)
	start := time.Now()
	h := startRaw(t, w.command("-o", "UserKnownHostsFile=/dev/zero", "-o", "StrictHostKeyChecking=accept-new", "buildbox", "--", bins.testmcp))
	h.initialize()
	h.echo(1, 10*time.Second)
	took := time.Since(start)
	t.Logf("answered after %v", took)
	// m2m-ssh idles at ~15 MiB; reading /dev/zero took gigabytes.
	sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, 100<<20)
	log := h.endLog()
	for _, want := range []string{"/dev/zero is not a regular file", "could not record the new host key"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
}

// -i naming the null device or a directory says so; the hint never tells
// the user to chmod a system file.
func TestHostileFileIdentityNotAFile(t *testing.T) {
	w := newWorld(t)
	for _, key := range []string{"/dev/null", w.dir} {
		t.Run(key, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := w.command("-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-i", key, "buildbox")
			wantStartFailure(t, ctx, cmd, key+": not a regular file")
			if stderr := fmt.Sprint(cmd.Stderr); strings.Contains(stderr, "chmod") {
				t.Errorf("a chmod hint for %s:\n%s", key, stderr)
			}
		})
	}
}

// --key-server-ca naming a pipe or a device is a usage error naming it,
// not a hang.
func TestHostileFileKeyServerCA(t *testing.T) {
	pipe := fifo(t, t.TempDir(), "ca.pem")
	for _, ca := range []string{pipe, "/dev/zero"} {
		t.Run(ca, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				wantUsageError(t, []string{"--host", "h", "--use-key-server", "--key-server-ca", ca}, "--key-server-ca: "+ca+" is not a regular file")
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("still blocked after 10s")
			}
		})
	}
}
