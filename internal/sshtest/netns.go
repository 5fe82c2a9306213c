package sshtest

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// netnsEnv marks a test binary that InOwnNetns started inside a network
// namespace of its own.
const netnsEnv = "M2M_SSHTEST_NETNS"

// InOwnNetns lets a test use interfaces and addresses besides loopback
// without any traffic leaving the machine's loopback: inside a network
// namespace the test made, it returns true and the test goes on. Outside
// one, it reruns the test in a new network namespace (unshare --net) after
// running setup there (a shell script of ip commands; lo is brought up
// first), fails t with the rerun's output if the rerun fails, and returns
// false: the caller returns. It needs root, unshare and ip: without them it
// skips, and fails under CI.
func InOwnNetns(t *testing.T, setup string) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		return true
	}
	if os.Geteuid() != 0 {
		if InCI() {
			t.Fatal("CI must run the tests as root: this one makes a network namespace")
		}
		t.Skip("making a network namespace needs root")
	}
	unshare := LookPath(t, "unshare")
	LookPath(t, "ip")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := "set -e\nip link set lo up\n" + setup + "\nexec \"$@\"\n"
	cmd := exec.Command(unshare, "--net", "--", "sh", "-c", script, "sh",
		self, "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a network namespace of its own: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^--- PASS: ` + regexp.QuoteMeta(t.Name()) + ` `).Match(out) {
		t.Fatalf("in a network namespace of its own, the test did not pass:\n%s", out)
	}
	return false
}
