//go:build unix

package sshcfg

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileConfigFiles: a named pipe, a device or an oversized file
// where a configuration file is expected is refused with a warning naming
// it, quickly, and the rest of the configuration still applies.
func TestHostileConfigFiles(t *testing.T) {
	home := homeWith(t, map[string]string{".ssh/big": strings.Repeat("# padding\n", maxFileSize/10+1)})
	fifo := filepath.Join(home, ".ssh", "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(home, ".ssh", "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(home, ".ssh", "big")
	cases := []struct {
		name    string
		include string // the file ~/.ssh/config includes before "User kept"
		want    string // the warning
	}{
		{"fifo", fifo, fifo + " is not a regular file (it is a named pipe)"},
		{"symlink to a fifo", link, link + " is not a regular file (it is a named pipe)"},
		{"glob matching a fifo", filepath.Join(home, ".ssh", "fif*"), fifo + " is not a regular file"},
		{"/dev/zero", "/dev/zero", "/dev/zero is not a regular file (it is a character device)"},
		{"over the size bound", big, big + " is larger than 262144 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config")
			os.WriteFile(cfg, []byte("Host box\n  Include "+c.include+"\n  User kept\n"), 0o600)
			var warnings strings.Builder
			o := testOptions(cfg)
			o.Home = home
			o.Logger = textLogger(&warnings)
			done := make(chan *Target, 1)
			go func() {
				tg, err := Resolve("box", o)
				if err != nil {
					t.Error(err)
				}
				done <- tg
			}()
			var tg *Target
			select {
			case tg = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Resolve still blocked after 5s")
			}
			if tg != nil {
				eq(t, "user", tg.User, "kept")
			}
			if !strings.Contains(warnings.String(), c.want) {
				t.Errorf("warnings lack %q:\n%s", c.want, warnings.String())
			}
		})
	}
}

// TestHostileConfigFileF: -F naming a pipe or device is an error naming
// it, not a hang.
func TestHostileConfigFileF(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, err := Resolve("box", testOptions(f))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), f+" is not a regular file") {
				t.Errorf("-F %s: %v, want not a regular file", f, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("-F %s: Resolve still blocked after 5s", f)
		}
	}
}
