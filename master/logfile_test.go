//go:build unix

package master

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// The master's log is a private file of the user's in a private
// directory; whatever else is found in its place is refused, at once,
// with the reason.
func TestOpenLog(t *testing.T) {
	for _, c := range []struct {
		name string
		// make prepares the state directory and returns the log's path.
		make func(t *testing.T, state string) string
		want string // "" when the log opens
	}{
		{"fresh", func(t *testing.T, state string) string { return filepath.Join(state, "m2m-ssh", "master.log") }, ""},
		{"directory others can write", func(t *testing.T, state string) string {
			dir := filepath.Join(state, "m2m-ssh")
			os.Mkdir(dir, 0o700)
			os.Chmod(dir, 0o777)
			return filepath.Join(dir, "master.log")
		}, "others can write to it (mode 0777)"},
		{"directory is a file", func(t *testing.T, state string) string {
			os.WriteFile(filepath.Join(state, "m2m-ssh"), nil, 0o600)
			return filepath.Join(state, "m2m-ssh", "master.log")
		}, "cannot create the directory"},
		{"log is a symlink", func(t *testing.T, state string) string {
			os.WriteFile(filepath.Join(state, "bashrc"), nil, 0o600)
			os.Symlink(filepath.Join(state, "bashrc"), filepath.Join(state, "master.log"))
			return filepath.Join(state, "master.log")
		}, "symbolic link"},
		{"log is a hard link", func(t *testing.T, state string) string {
			os.WriteFile(filepath.Join(state, "bashrc"), nil, 0o600)
			os.Link(filepath.Join(state, "bashrc"), filepath.Join(state, "master.log"))
			return filepath.Join(state, "master.log")
		}, "has 2 names"},
		{"log is a named pipe", func(t *testing.T, state string) string {
			syscall.Mkfifo(filepath.Join(state, "master.log"), 0o600)
			return filepath.Join(state, "master.log")
		}, "named pipe"}, // refused at once, not waited on
		{"log is a directory", func(t *testing.T, state string) string {
			os.Mkdir(filepath.Join(state, "master.log"), 0o700)
			return filepath.Join(state, "master.log")
		}, "cannot open the master's log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			path := c.make(t, state)
			type opened struct {
				f   *os.File
				err error
			}
			o := sshtest.Within(t, 10*time.Second, func() opened { f, err := OpenLog(path); return opened{f, err} })
			f, err := o.f, o.err
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("OpenLog: %v, want an error with %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			di, _ := os.Stat(filepath.Dir(path))
			if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
				t.Fatalf("log %v in a directory %v, want 0600 in 0700", fi.Mode(), di.Mode())
			}
		})
	}
	if os.Geteuid() == 0 {
		t.Run("another user's directory", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m2m-ssh")
			os.Mkdir(dir, 0o700)
			os.Chown(dir, 4242, 4242)
			if _, err := OpenLog(filepath.Join(dir, "master.log")); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") {
				t.Fatalf("OpenLog: %v", err)
			}
		})
	}
}

// A log past maxLog is set aside, once, and a fresh one begun.
func TestOpenLogSetsFullAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.log")
	os.WriteFile(path, make([]byte, maxLog+1), 0o600)
	f, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	old, err := os.Stat(path + ".old")
	if err != nil || old.Size() != maxLog+1 {
		t.Fatalf("the full log was not set aside: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("the new log holds %d bytes", fi.Size())
	}
}
