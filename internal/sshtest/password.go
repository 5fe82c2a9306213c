package sshtest

import (
	"os"
	"os/user"
	"strings"
	"testing"
)

// PasswordUser is the account .ci/run creates with a password, for the
// tests of password and keyboard-interactive logins against sshd.
const PasswordUser = "m2m-pass"

// PasswordFile holds PasswordUser's password, readable by root alone.
// .ci/run picks the password at random on each machine, so that no
// machine running an sshd has an account with a password anyone knows.
const PasswordFile = "/var/lib/m2m-ssh-test/m2m-pass.password"

// Password returns PasswordUser and its password. sshd checks passwords
// only when it runs as root, so the test is skipped otherwise; as root
// without the account it is skipped too, and failed under CI, which must
// create it (.ci/run).
func Password(t testing.TB) (*user.User, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sshd checks passwords only when it runs as root")
	}
	u, err := user.Lookup(PasswordUser)
	var data []byte
	if err == nil {
		data, err = os.ReadFile(PasswordFile)
	}
	pass := strings.TrimSpace(string(data))
	if err == nil && pass == "" {
		err = os.ErrNotExist
	}
	if err != nil {
		if InCI() {
			t.Fatalf("user %s or its password in %s is missing (%v); CI must create them (.ci/run)", PasswordUser, PasswordFile, err)
		}
		t.Skipf("user %s or its password in %s is missing (%v): create them as .ci/run does", PasswordUser, PasswordFile, err)
	}
	return u, pass
}
