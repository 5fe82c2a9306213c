package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
)

// Master is a real OpenSSH ControlMaster (ssh -M -S PATH -fN) connected to
// a test sshd: what a user leaves running after logging in once.
type Master struct {
	Path   string // the ControlPath: its socket
	Config string // an ssh config file naming Host, for ssh -F
	Host   string // the alias in Config
	Pid    int    // the master's process (ssh forks it with -f)
	ssh    string
}

// MasterHost is the alias a Master's Config gives the sshd.
const MasterHost = "mastered"

// masterPid reads ssh -O check's "Master running (pid=N)".
var masterPid = regexp.MustCompile(`Master running \(pid=(\d+)\)`)

// StartMaster starts ssh as a ControlMaster to sshd, logging in with key,
// and returns once its control socket answers ssh -O check. extra are
// further ssh_config lines for the host (SendEnv, SetEnv, ...). The
// socket lives in a new directory of mode 0700 with a short path, since a
// socket's path is bounded (about 100 bytes, less OpenSSH's temporary
// suffix). The master is killed when the test ends.
func StartMaster(t testing.TB, sshd *SSHD, key Key, extra ...string) *Master {
	t.Helper()
	sshPath := LookPath(t, "ssh")
	dir, err := os.MkdirTemp("", "m2m-cm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &Master{Path: filepath.Join(dir, "cm"), Host: MasterHost, ssh: sshPath}
	kh := WriteFile(t, dir, "known_hosts", sshd.KnownHosts()...)
	lines := []string{
		"Host " + MasterHost,
		"  HostName " + sshd.Host,
		fmt.Sprintf("  Port %d", sshd.Port),
		"  User " + sshd.User,
		"  IdentityFile " + key.Path,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  BatchMode yes",
		"  UserKnownHostsFile " + kh,
		"  GlobalKnownHostsFile /dev/null",
		"  StrictHostKeyChecking yes",
		"  ControlPath " + m.Path,
		"  LogLevel ERROR",
	}
	for _, l := range extra {
		lines = append(lines, "  "+l)
	}
	m.Config = WriteFile(t, dir, "ssh_config", lines...)

	cmd := exec.Command(sshPath, "-F", m.Config, "-M", "-fN", MasterHost)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh -M -fN: %v\n%s\nsshd log:\n%s", err, out, sshd.Log())
	}
	check, err := exec.Command(sshPath, "-F", m.Config, "-O", "check", MasterHost).CombinedOutput()
	match := masterPid.FindSubmatch(check)
	if err != nil || match == nil {
		t.Fatalf("ssh -O check after starting the master: %v\n%s", err, check)
	}
	m.Pid, _ = strconv.Atoi(string(match[1]))
	t.Cleanup(m.Kill)
	return m
}

// Kill ends the master at once (SIGKILL): its socket stays behind, stale,
// as after a crash.
func (m *Master) Kill() {
	if p, err := os.FindProcess(m.Pid); err == nil {
		p.Signal(syscall.SIGKILL)
	}
}

// SSH returns an ssh command through the master: ssh -F Config -S Path
// args..., the host alias included by the caller where ssh needs one.
func (m *Master) SSH(args ...string) *exec.Cmd {
	return exec.Command(m.ssh, append([]string{"-F", m.Config, "-S", m.Path}, args...)...)
}
