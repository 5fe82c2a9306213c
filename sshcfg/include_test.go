package sshcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// homeWith makes a home directory whose .ssh holds files.
func homeWith(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	for name, text := range files {
		p := filepath.Join(home, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// TestDefaultFiles reads ~/.ssh/config, then the system file, without -F;
// Include in the system file is relative to the system file's directory.
func TestDefaultFiles(t *testing.T) {
	home := homeWith(t, map[string]string{
		".ssh/config":          "Host box\n  User from-user-file\n",
		"etc/ssh_config":       "Include sys.d/*.conf\nHost *\n  User from-system\n  Port 2200\n",
		"etc/sys.d/a.conf":     "Host box\n  IdentityFile /sys/key\n",
		"etc/sys.d/b.conf":     "Host box\n  Include ~/.ssh/never\n",
		".ssh/never":           "User never\n",
		".ssh/config.d/unused": "User unused\n",
	})
	var warnings strings.Builder
	o := testOptions("")
	o.Home = home
	o.SystemConfig = filepath.Join(home, "etc", "ssh_config")
	o.Logger = textLogger(&warnings)
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "user", tg.User, "from-user-file")
	eq(t, "port", tg.Port, 2200)
	eq(t, "identity", tg.IdentityFiles, []string{"/sys/key"})
	if !strings.Contains(warnings.String(), "bad include path ~/.ssh/never") {
		t.Errorf("no warning for ~ in a system Include:\n%s", warnings.String())
	}
}

// TestIncludeLoops checks that a file including itself, once or twice per
// line, ends with a warning instead of hanging.
func TestIncludeLoops(t *testing.T) {
	for _, text := range []string{
		"Include config\nHost *\n  User looped\n",
		"Include config config\nHost *\n  User looped\n",
	} {
		t.Run(text, func(t *testing.T) {
			t.Parallel()
			home := homeWith(t, map[string]string{".ssh/config": text})
			var warnings strings.Builder
			o := testOptions("")
			o.Home = home
			o.Logger = textLogger(&warnings)
			tg, err := Resolve("box", o)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "user", tg.User, "looped")
			if !strings.Contains(warnings.String(), "include") {
				t.Errorf("no warning about the loop:\n%s", warnings.String())
			}
		})
	}
}

func TestIncludeGlob(t *testing.T) {
	home := homeWith(t, map[string]string{
		".ssh/d/b":       "x",
		".ssh/d/a":       "x",
		".ssh/d/.hidden": "x",
		".ssh/d/sub/c":   "x",
	})
	r := &resolver{home: home}
	got, err := r.glob("~/.ssh/d/*")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "glob", got, []string{home + "/.ssh/d/a", home + "/.ssh/d/b", home + "/.ssh/d/sub"})
	got, _ = r.glob(home + "/.ssh/d/.h*")
	eq(t, "explicit dot", got, []string{home + "/.ssh/d/.hidden"})
	got, _ = r.glob("~/.ssh/nothing/*")
	eq(t, "no match", len(got), 0)
}

// TestPermissions warns where ssh would refuse a file others can write.
func TestPermissions(t *testing.T) {
	home := homeWith(t, map[string]string{".ssh/config": "Host *\n  User still-read\n"})
	if err := os.Chmod(filepath.Join(home, ".ssh", "config"), 0o666); err != nil {
		t.Fatal(err)
	}
	var warnings strings.Builder
	o := testOptions("")
	o.Home = home
	o.Logger = textLogger(&warnings)
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "user", tg.User, "still-read")
	if !strings.Contains(warnings.String(), "bad permissions") {
		t.Errorf("no permission warning:\n%s", warnings.String())
	}
}
