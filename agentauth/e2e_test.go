package agentauth

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// These tests log in to a real OpenSSH sshd on 127.0.0.1 with the
// identities and host key checking under test, and run a command.

// e2eTarget is the target for srv, with its host keys in a known_hosts file
// in dir, the agent disabled and strict checking.
func e2eTarget(t *testing.T, srv *sshtest.SSHD, dir string) *sshcfg.Target {
	t.Helper()
	kh := sshtest.WriteFile(t, dir, "known_hosts", srv.KnownHosts()...)
	return &sshcfg.Target{
		Alias: "box", HostName: srv.Host, Port: srv.Port, User: srv.User,
		IdentityAgent: "none", StrictHostKeyChecking: "yes",
		UserKnownHostsFiles: []string{kh},
	}
}

// login connects to tgt with LoadIdentities(tgt, o) and NewHostKeyChecker,
// runs echo in a session, and returns the error as the bridge would see
// it (AuthError applied).
func login(t *testing.T, tgt *sshcfg.Target, o IdentityOptions) error {
	t.Helper()
	_, err := loginKey(t, tgt, o)
	return err
}

// loginKey is login that also returns the type of the host key the
// server presented.
func loginKey(t *testing.T, tgt *sshcfg.Target, o IdentityOptions) (hostKeyType string, err error) {
	t.Helper()
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	ids, err := LoadIdentities(tgt, o)
	if err != nil {
		return "", err
	}
	defer ids.Close()
	hk, err := NewHostKeyChecker(tgt, HostKeyOptions{Logger: o.Logger})
	if err != nil {
		return "", err
	}
	check := hk.Callback()
	cfg := &ssh.ClientConfig{
		User: tgt.User,
		Auth: []ssh.AuthMethod{ids.AuthMethod()},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			hostKeyType = key.Type()
			return check(host, remote, key)
		},
		HostKeyAlgorithms: hk.Algorithms(),
	}
	client, err := ssh.Dial("tcp", tgt.Addr(), cfg)
	if err != nil {
		return hostKeyType, ids.AuthError(err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return hostKeyType, err
	}
	defer sess.Close()
	out, err := sess.Output("echo agentauth-ok")
	if err != nil {
		return hostKeyType, err
	}
	if strings.TrimSpace(string(out)) != "agentauth-ok" {
		t.Fatalf("remote said %q", out)
	}
	return hostKeyType, nil
}

// copyKey copies a fixture key pair into dir with mode 0600, as keys are
// kept on disk (git does not keep modes).
func copyKey(t *testing.T, dir, name string) string {
	t.Helper()
	for _, suffix := range []string{"", ".pub"} {
		data, err := os.ReadFile(fixture(name + suffix))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+suffix), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, name)
}

func TestE2EAgentAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	agentKey := sshtest.Keygen(t, dir, "id_agent", sshtest.KeyOptions{})
	fileKey := sshtest.Keygen(t, dir, "id_file", sshtest.KeyOptions{})
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{agentKey.Public, fileKey.Public}})
	ag := sshtest.StartAgent(t)
	ag.Add(t, agentKey.Path)

	t.Run("agent via SSH_AUTH_SOCK", func(t *testing.T) {
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent = ""
		env := map[string]string{"SSH_AUTH_SOCK": ag.Sock}
		if err := login(t, tgt, IdentityOptions{Getenv: mapEnv(env)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("key file", func(t *testing.T) {
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityFiles = []string{fileKey.Path}
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refused identities", func(t *testing.T) {
		tgt := e2eTarget(t, srv, t.TempDir())
		other := copyKey(t, t.TempDir(), "other_ed25519")
		tgt.IdentityFiles = []string{other}
		err := login(t, tgt, IdentityOptions{})
		var aerr *AuthError
		if !errors.As(err, &aerr) {
			t.Fatalf("login = %v, want *AuthError", err)
		}
		s := err.Error()
		if !strings.Contains(s, "Authentication failed") || !strings.Contains(s, other) || !strings.Contains(s, "SHA256:") || aerr.Hint() == "" {
			t.Errorf("error = %q hint = %q", s, aerr.Hint())
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.UserKnownHostsFiles = []string{filepath.Join(t.TempDir(), "known_hosts")}
		tgt.IdentityFiles = []string{fileKey.Path}
		err := login(t, tgt, IdentityOptions{})
		var herr *HostKeyError
		if !errors.As(err, &herr) || herr.Problem != HostUnknown {
			t.Fatalf("login = %v, want unknown host", err)
		}
		if !strings.Contains(err.Error(), "Host key verification failed") {
			t.Errorf("error = %v", err)
		}
	})
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
