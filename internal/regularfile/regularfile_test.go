//go:build unix

package regularfile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello\n"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 1025), 0o600)
	exact := filepath.Join(dir, "exact")
	os.WriteFile(exact, make([]byte, 1024), 0o600)

	cases := []struct {
		name, path string
		want       string // content, or the error text expected
		notRegular bool
	}{
		{"regular", small, "hello\n", false},
		{"at the limit", exact, strings.Repeat("\x00", 1024), false},
		{"over the limit", big, big + " is larger than 1024 bytes", false},
		{"fifo", fifo, fifo + " is not a regular file (it is a named pipe)", true},
		{"symlink to a fifo", link, link + " is not a regular file (it is a named pipe)", true},
		{"directory", dir, dir + " is not a regular file (it is a directory)", true},
		{"/dev/null", "/dev/null", "/dev/null is not a regular file (it is a character device)", true},
		{"/dev/zero", "/dev/zero", "/dev/zero is not a regular file (it is a character device)", true},
		{"missing", filepath.Join(dir, "nope"), "no such file or directory", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			type result struct {
				data []byte
				err  error
			}
			r := sshtest.Within(t, 5*time.Second, func() result {
				d, err := Read(c.path, 1024)
				return result{d, err}
			})
			if r.err == nil {
				if string(r.data) != c.want {
					t.Fatalf("read %q, want %q", r.data, c.want)
				}
				return
			}
			if !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("error %q, want %q", r.err, c.want)
			}
			if got := isNotRegular(r.err); got != c.notRegular {
				t.Fatalf("%v is a *NotRegularError: %v", r.err, got)
			}
		})
	}
}

// A FIFO with a writer holding it open must be refused too, not read.
func TestOpenFIFOWithWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	err = sshtest.Within(t, 5*time.Second, func() error {
		_, _, err := OpenFile(fifo, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
		return err
	})
	if !isNotRegular(err) {
		t.Fatalf("OpenFile = %v, want not a regular file", err)
	}
}

// Opened for writing, a FIFO nobody reads and a socket are refused at
// once, as what they are: not with the open's "no such device".
func TestOpenForWritingNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, path := range []string{fifo, sock} {
		err := sshtest.Within(t, 5*time.Second, func() error {
			_, _, err := OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			return err
		})
		if !isNotRegular(err) {
			t.Fatalf("OpenFile(%s) = %v, want not a regular file", path, err)
		}
	}
}
