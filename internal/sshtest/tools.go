package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped
// for lack of a program.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// LookPath returns the path of an OpenSSH program (sshd, ssh, ssh-agent,
// ssh-add, ssh-keygen). It skips the test when the program is missing, and
// fails it under CI.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	dirs := []string{"", "/usr/sbin", "/usr/local/sbin", "/sbin"}
	for _, d := range dirs {
		if d == "" {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
			continue
		}
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if InCI() {
		t.Fatalf("%s is not installed; CI must install it (.ci/run)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// Run runs a command and fails the test with its output when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Build compiles the package pkg (a path relative to the module root, such
// as "." or "./internal/testmcp") into dir and returns the binary's path.
// The binary is built with -race when the test binary is. It returns an
// error rather than taking a testing.TB so that TestMain can use it.
func Build(dir, pkg, name string) (string, error) { return build(dir, pkg, name, RaceEnabled) }

// BuildPeer is Build always without the race detector, for a program the
// tests run as the far side of the code under test (the test MCP server
// behind sshd): the detector is for the code under test, and in a server
// that makes and encodes megabytes of JSON it took most of the time of
// the tests under -race.
func BuildPeer(dir, pkg, name string) (string, error) { return build(dir, pkg, name, false) }

func build(dir, pkg, name string, race bool) (string, error) {
	out := filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// moduleRoot is the directory holding go.mod.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
