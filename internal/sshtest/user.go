package sshtest

import (
	"os"
	"os/user"
	"strconv"
	"testing"
)

// TestUser is the unprivileged account .ci/run creates for the tests that
// must not log in as root: OpenSSH before 9.8 runs a root login without
// privilege separation, and then refuses the "signal" channel request.
const TestUser = "m2m-test"

// UnprivilegedUser returns the user a test logs in as when the login must
// not be root's: the current user, or TestUser when the tests run as root.
// As root without TestUser it skips the test, and fails it under CI, which
// must create the account (.ci/run).
func UnprivilegedUser(t testing.TB) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	u, err := user.Lookup(TestUser)
	if err != nil {
		if InCI() {
			t.Fatalf("the tests run as root and user %s does not exist (%v); CI must create it (.ci/run)", TestUser, err)
		}
		t.Skipf("the tests run as root and user %s does not exist: create it as .ci/run does", TestUser)
	}
	return u
}

// UserDir returns a new directory that u owns and everyone can traverse,
// for what a program sshd runs as u writes (pid files) and the test reads.
// It is removed when the test ends.
func UserDir(t testing.TB, u *user.User) string {
	t.Helper()
	dir := sharedDir(t, "m2m-ssh-user")
	if os.Geteuid() != 0 {
		return dir
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sharedDir returns a new directory that everyone can traverse and read,
// removed when the test ends. t.TempDir's are not: they sit in a 0700
// directory.
func sharedDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
