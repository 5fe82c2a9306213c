//go:build unix

package main

import (
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

var unfinalized []*os.File

// A pipe is reopened non-blocking and still carries data; a regular file
// is left alone.
func TestPollable(t *testing.T) {
	// A blocking pipe, as a process inherits it on fds 0 and 1.
	var fds [2]int
	if err := syscall.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	// The originals share their descriptors with what pollable returns,
	// which closes them; kept here, their finalizers never run.
	unfinalized = append(unfinalized, r, w)
	if nonblocking(t, fds[0]) {
		t.Fatal("syscall.Pipe made a non-blocking pipe")
	}
	pr, pw := pollable(r), pollable(w)
	defer pr.Close()
	defer pw.Close()
	if pr == r || pw == w {
		t.Fatal("a pipe was not reopened")
	}
	if !nonblocking(t, fds[0]) || !nonblocking(t, fds[1]) {
		t.Fatal("the pipe is still blocking")
	}
	if _, err := pw.Write([]byte("frame\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := pr.Read(buf)
	if err != nil || string(buf[:n]) != "frame\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := pollable(f); got != f || nonblocking(t, int(f.Fd())) {
		t.Fatal("a regular file was changed")
	}
}
