package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/ssh"
)

// The secrets a user hands m2m-ssh in its environment reach no child it
// starts (ProxyCommand, Match exec, SSH_ASKPASS) and are never sent to the
// server, even when SendEnv names them; the variables around them still
// are, so the test sees each path work.
func TestEndToEndSecretsStayHome(t *testing.T) {
	sshtest.LookPath(t, "nc")
	dir := t.TempDir()
	const pass = "the right passphrase"
	key := sshtest.Keygen(t, dir, "id_encrypted", sshtest.KeyOptions{Passphrase: pass})
	keyText, err := os.ReadFile(key.Path)
	if err != nil {
		t.Fatal(err)
	}
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public}})
	kh := sshtest.WriteFile(t, dir, "known_hosts", sshd.KnownHosts()...)
	seen := func(name string) string { return filepath.Join(dir, name+".env") }
	askpass := sshtest.WriteFile(t, dir, "askpass", "#!/bin/sh", "env > "+seen("askpass"), "echo '"+pass+"'")
	if err := os.Chmod(askpass, 0o700); err != nil {
		t.Fatal(err)
	}
	config := sshtest.WriteFile(t, dir, "ssh_config",
		`Match exec "env > `+seen("match")+`"`,
		"Host box",
		"  HostName "+sshd.Host,
		fmt.Sprintf("  Port %d", sshd.Port),
		"  User "+sshd.User,
		"  UserKnownHostsFile "+kh,
		"  StrictHostKeyChecking yes",
		"  IdentityAgent none",
		"  ProxyCommand sh -c 'env > "+seen("proxy")+"; exec nc %h %p'",
		"  SendEnv M2M_*",
	)
	cmd := m2mCommand([]string{
		"HOME=" + dir, "PATH=/usr/bin:/bin",
		"M2M_SSH_KEY=" + string(keyText),
		// Wrong, so that the askpass program is asked too.
		"M2M_SSH_PASSPHRASE=not the passphrase",
		"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
		"M2M_VISIBLE=sent",
	}, "-F", config, "box", "--", bins.testmcp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer s.Close()

	remote := func(name string) string {
		t.Helper()
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "env", Arguments: map[string]any{"name": name}})
		if err != nil {
			t.Fatalf("tools/call env %s: %v", name, err)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}
	if got := remote("M2M_VISIBLE"); got != "sent" {
		t.Fatalf("SendEnv M2M_* did not send M2M_VISIBLE (got %q): the test proves nothing", got)
	}
	for _, name := range []string{"M2M_SSH_KEY", "M2M_SSH_PASSPHRASE"} {
		if got := remote(name); got != "" {
			t.Errorf("the server received %s (%d bytes)", name, len(got))
		}
	}
	for _, child := range []string{"proxy", "match", "askpass"} {
		env, err := os.ReadFile(seen(child))
		if err != nil {
			t.Fatalf("the %s child did not run: %v", child, err)
		}
		if !strings.Contains(string(env), "M2M_VISIBLE=sent") {
			t.Errorf("the %s child's environment lacks M2M_VISIBLE: the test proves nothing", child)
		}
		for _, name := range []string{"M2M_SSH_KEY=", "M2M_SSH_PASSPHRASE="} {
			if strings.Contains(string(env), name) {
				t.Errorf("the %s child inherited %s", child, strings.TrimSuffix(name, "="))
			}
		}
	}
	// Closed, m2m-ssh has exited and its stderr is all copied.
	s.Close()
	stderr := cmd.Stderr.(*sshtest.Buffer).String()
	if !strings.Contains(stderr, "not sending them") || !strings.Contains(stderr, "M2M_SSH_KEY") {
		t.Errorf("no warning that SendEnv's secrets were withheld:\n%s", stderr)
	}
	for _, secret := range []string{pass, "not the passphrase", "PRIVATE KEY"} {
		if strings.Contains(stderr, secret) {
			t.Errorf("stderr carries a secret (%q)", secret)
		}
	}
}

// Seed mode encrypts the key it generates with M2M_SSH_PASSPHRASE, as it
// does with --passphrase: a secret kept out of the process listing must
// not leave the key on disk in the clear.
func TestEndToEndSeedKeyEncryptedFromEnv(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ssh", "m2m_client")
	cmd := m2mCommand([]string{"HOME=" + dir, "PATH=/usr/bin:/bin", "M2M_SSH_PASSPHRASE=from the env"},
		"--host", "127.0.0.1", "--port", fmt.Sprint(sshtest.FreePort(t)), "--client-key", key)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Nothing listens on the port: the session fails after the key is made.
	wantStartFailure(t, ctx, cmd, "Connection refused")
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatalf("no key generated: %v", err)
	}
	if _, err := ssh.ParsePrivateKey(data); err == nil {
		t.Fatal("the generated key is not encrypted")
	}
	if _, err := ssh.ParsePrivateKeyWithPassphrase(data, []byte("from the env")); err != nil {
		t.Fatalf("the generated key does not open with M2M_SSH_PASSPHRASE: %v", err)
	}
}
