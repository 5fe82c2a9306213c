package sshtest

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestSSHDWithOpenSSHClient proves the fixture itself: OpenSSH's own client
// logs in with a key held by the test agent and runs a command.
func TestSSHDWithOpenSSHClient(t *testing.T) {
	ssh := LookPath(t, "ssh")
	dir := t.TempDir()
	key := Keygen(t, dir, "id_ed25519", KeyOptions{})
	srv := StartSSHD(t, SSHDConfig{AuthorizedKeys: []string{key.Public}})
	agent := StartAgent(t)
	agent.Add(t, key.Path)
	kh := WriteFile(t, dir, "known_hosts", srv.KnownHosts()...)

	cmd := exec.Command(ssh, "-F", "none", "-p", strconv.Itoa(srv.Port),
		"-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=no",
		srv.User+"@"+srv.Host, "echo", "fixture-ok")
	cmd.Env = []string{"SSH_AUTH_SOCK=" + agent.Sock, "HOME=" + dir, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v\n%s\nsshd:\n%s", err, out, srv.Log())
	}
	if !strings.Contains(string(out), "fixture-ok") {
		t.Fatalf("ssh output = %q", out)
	}
}
