package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNoPackagePrefixes checks that no library's error or log text starts
// with a Go package's name ("bridge: ...", "agentauth: ..."): only the
// command adds a prefix, "m2m-ssh: error:", once.
func TestNoPackagePrefixes(t *testing.T) {
	var pkgs []string
	filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || path == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
			return filepath.SkipDir
		}
		pkgs = append(pkgs, regexp.QuoteMeta(d.Name()))
		return nil
	})
	prefix := regexp.MustCompile(`"(` + strings.Join(pkgs, "|") + `): `)
	checked := 0
	filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || !strings.Contains(path, "/") {
			return nil
		}
		// The release builder and the test programs speak to developers.
		for _, dev := range []string{"release/", "internal/hostile/", "internal/testmcp/", "internal/sshtest/", "internal/bench/"} {
			if strings.HasPrefix(path, dev) {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(b), "\n") {
			l := strings.TrimSpace(line)
			// Comments, a panic (a bug, not a user's error), and code that
			// reads x/crypto's own words.
			if strings.HasPrefix(l, "//") || strings.HasPrefix(l, "panic(") || strings.Contains(l, "Prefix(") || strings.Contains(l, "strings.Contains(") {
				continue
			}
			if m := prefix.FindString(line); m != "" {
				t.Errorf("%s:%d: text starts with the package name %s: %s", path, i+1, m, l)
			}
		}
		return nil
	})
	if checked < 20 {
		t.Fatalf("checked %d files; the walk is broken", checked)
	}
}
