//go:build linux

package mux_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// otherUser is the unprivileged test user's uid and gid, for files and
// processes that must not be ours. It needs root; it skips otherwise,
// and fails under CI, where the tests run as root.
func otherUser(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		if sshtest.InCI() {
			t.Fatal("CI runs the tests as root, to act as another user")
		}
		t.Skip("acting as another user needs root")
	}
	u := sshtest.UnprivilegedUser(t)
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// listening is a socket at a fresh path with a server that only accepts,
// so that Dial's verdict is about the file alone.
func listening(t *testing.T) string {
	t.Helper()
	l, err := mux.Listen(filepath.Join(shortDir(t), "cm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	srv := &mux.Server{Open: func(context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
		return nil, nil, errors.New("no channels here")
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Path()
}

func TestDialTrustsOnlyOurSocket(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T) string
		want    string // reason fragment of a SocketError; "" for success
	}{
		{"ours, 0600", listening, ""},
		{"mode 0666", func(t *testing.T) string {
			p := listening(t)
			chmod(p, 0o666)
			return p
		}, "accessible to group or others (mode 0666)"},
		{"mode 0660", func(t *testing.T) string {
			p := listening(t)
			chmod(p, 0o660)
			return p
		}, "mode 0660"},
		{"owned by another user", func(t *testing.T) string {
			uid, gid := otherUser(t)
			p := listening(t)
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is owned by uid"},
		{"a regular file", func(t *testing.T) string {
			return sshtest.WriteFile(t, shortDir(t), "cm", "not a socket")
		}, "is not a socket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.prepare(t)
			cl, err := mux.Dial(timeout(t, hangBound), path)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				cl.Close()
				return
			}
			var se *mux.SocketError
			if !errors.As(err, &se) || !strings.Contains(se.Reason, c.want) || se.Path != path {
				t.Fatalf("Dial = %v, want a SocketError for %s saying %q", err, path, c.want)
			}
			if verdict.Hint(err) == "" || !verdict.Permanent(err) {
				t.Errorf("the refusal has no hint or is not permanent: %q", verdict.Hint(err))
			}
		})
	}
}

func TestDialNoMaster(t *testing.T) {
	dir := shortDir(t)
	stale := filepath.Join(dir, "stale")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	chmod(stale, 0o600)
	cases := []struct {
		name  string
		path  string
		stale bool
	}{
		{"no file", filepath.Join(dir, "none"), false},
		{"no directory", filepath.Join(dir, "none", "cm"), false},
		{"a stale socket", stale, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := mux.Dial(timeout(t, hangBound), c.path)
			var nm *mux.NoMasterError
			if !errors.Is(err, mux.ErrNoMaster) || !errors.As(err, &nm) || nm.Stale != c.stale {
				t.Fatalf("Dial = %v, want ErrNoMaster (stale %v)", err, c.stale)
			}
		})
	}
}

func TestListen(t *testing.T) {
	t.Run("the socket is 0600", func(t *testing.T) {
		p := listening(t)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
			t.Fatalf("the socket: %v, %v; want a socket of mode 0600", fi.Mode(), err)
		}
		if tmp, _ := filepath.Glob(p + ".*"); len(tmp) != 0 {
			t.Fatalf("temporary names left behind: %v", tmp)
		}
	})
	t.Run("an existing path", func(t *testing.T) {
		p := listening(t)
		if _, err := mux.Listen(p); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Listen on a live socket's path: %v, want fs.ErrExist", err)
		}
		// The live master is untouched.
		if _, err := dial(t, p).Check(timeout(t, hangBound)); err != nil {
			t.Fatalf("the first master after the second's attempt: %v", err)
		}
	})
	t.Run("two racing", func(t *testing.T) {
		p := filepath.Join(shortDir(t), "cm")
		const racers = 8
		var wg sync.WaitGroup
		errs := make(chan error, racers)
		for range racers {
			wg.Go(func() {
				l, err := mux.Listen(p)
				if err == nil {
					t.Cleanup(func() { l.Close() })
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		won := 0
		for err := range errs {
			if err == nil {
				won++
			} else if !errors.Is(err, fs.ErrExist) {
				t.Errorf("a losing Listen: %v, want fs.ErrExist", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d Listens got the path, want exactly 1", won)
		}
	})
	dirCases := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"a directory writable by others", 0o777, false},
		{"a directory writable by its group", 0o770, false},
		{"a sticky directory, as /tmp", 0o777 | os.ModeSticky, true},
		{"a private directory", 0o700, true},
	}
	for _, c := range dirCases {
		t.Run(c.name, func(t *testing.T) {
			dir := shortDir(t)
			if err := os.Chmod(dir, c.mode); err != nil {
				t.Fatal(err)
			}
			l, err := mux.Listen(filepath.Join(dir, "cm"))
			if c.ok {
				if err != nil {
					t.Fatalf("Listen: %v", err)
				}
				l.Close()
				return
			}
			var se *mux.SocketError
			if !errors.As(err, &se) || !se.Dir || se.Path != dir {
				t.Fatalf("Listen = %v, want a SocketError for the directory %s", err, dir)
			}
		})
	}
	t.Run("a directory of another user", func(t *testing.T) {
		uid, gid := otherUser(t)
		dir := shortDir(t)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		var se *mux.SocketError
		if _, err := mux.Listen(filepath.Join(dir, "cm")); !errors.As(err, &se) || !se.Dir {
			t.Fatalf("Listen = %v, want a SocketError for the directory", err)
		}
	})
	t.Run("Close removes only its own socket", func(t *testing.T) {
		p := filepath.Join(shortDir(t), "cm")
		l, err := mux.Listen(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		other := sshtest.WriteFile(t, filepath.Dir(p), "cm", "someone else's")
		l.Close()
		if _, err := os.Stat(other); err != nil {
			t.Fatalf("Close removed a file it did not place: %v", err)
		}
	})
}
