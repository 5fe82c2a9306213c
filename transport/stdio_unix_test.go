//go:build unix

package transport

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func nonblocking(t *testing.T, fd int) bool {
	t.Helper()
	flags, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	return flags&syscall.O_NONBLOCK != 0
}

// A pipe inherited in blocking mode is reopened non-blocking and still
// carries data; a regular file is left alone, even when non-blocking.
func TestStdio(t *testing.T) {
	// A blocking pipe, as a process inherits it on fds 0 and 1.
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	if nonblocking(t, fds[0]) {
		t.Fatal("syscall.Pipe made a non-blocking pipe")
	}
	sr, sw := Stdio(r), Stdio(w)
	if sr == io.ReadWriter(r) || sw == io.ReadWriter(w) {
		t.Fatal("a pipe was not reopened")
	}
	if !nonblocking(t, fds[0]) || !nonblocking(t, fds[1]) {
		t.Fatal("the pipe is still blocking")
	}
	if _, err := sw.Write([]byte("frame\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := sr.Read(buf)
	if err != nil || string(buf[:n]) != "frame\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}

	for _, nb := range []bool{false, true} {
		f, err := os.Create(filepath.Join(t.TempDir(), "file"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.SetNonblock(int(f.Fd()), nb); err != nil {
			t.Fatal(err)
		}
		if got := Stdio(f); got != io.ReadWriter(f) || nonblocking(t, int(f.Fd())) != nb {
			t.Fatalf("a regular file (non-blocking %v) was changed", nb)
		}
	}
}

// A pipe that comes non-blocking, and so is in the poller already (the
// os package registers such a descriptor when it wraps it), still waits
// for input: a read of the empty pipe must wait for the write, not fail.
func TestStdioNonblockingPipe(t *testing.T) {
	r, w, err := os.Pipe() // non-blocking and registered, as os.Stdin would be
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	sr := Stdio(r)
	type result struct {
		s   string
		err error
	}
	got := make(chan result)
	go func() {
		buf := make([]byte, 1)
		for {
			n, err := sr.Read(buf)
			got <- result{string(buf[:n]), err}
			if err != nil {
				return
			}
		}
	}()
	// Each byte is written after the one before was read, so the reader
	// finds the pipe empty before most of them.
	for i := range 100 {
		want := string(rune('a' + i%26))
		if _, err := w.Write([]byte(want)); err != nil {
			t.Fatal(err)
		}
		if res := <-got; res.err != nil || res.s != want {
			t.Fatalf("read %d: %q, %v; want %q", i, res.s, res.err, want)
		}
	}
}
