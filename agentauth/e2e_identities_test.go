package agentauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
)

// TestE2EIdentitiesOnlyWithCrowdedAgent: an agent holding several keys
// against an sshd allowing two attempts. Without IdentitiesOnly the
// agent's other keys use up the attempts; with it, the configured key,
// matched in the agent through its .pub (no private file on disk), is
// the only one offered.
func TestE2EIdentitiesOnlyWithCrowdedAgent(t *testing.T) {
	dir := t.TempDir()
	ag := sshtest.StartAgent(t)
	for _, name := range []string{"decoy1", "decoy2", "decoy3"} {
		ag.Add(t, sshtest.Keygen(t, dir, name, sshtest.KeyOptions{}).Path)
	}
	key := sshtest.Keygen(t, dir, "id_wanted", sshtest.KeyOptions{})
	ag.Add(t, key.Path)
	if err := os.Remove(key.Path); err != nil {
		t.Fatal(err)
	}
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{key.Public},
		Extra:          []string{"MaxAuthTries 2"},
	})
	env := mapEnv(map[string]string{"SSH_AUTH_SOCK": ag.Sock})

	t.Run("IdentitiesOnly", func(t *testing.T) {
		log, buf := newLog()
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent, tgt.IdentitiesOnly = "", true
		tgt.IdentityFiles = []string{key.Path}
		if err := login(t, tgt, IdentityOptions{Getenv: env, Logger: log}); err != nil {
			t.Fatalf("%v\n%s", err, buf)
		}
	})
	t.Run("whole agent", func(t *testing.T) {
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent = ""
		err := login(t, tgt, IdentityOptions{Getenv: env})
		var aerr *AuthError
		if !errors.As(err, &aerr) {
			t.Fatalf("login = %v, want the server to give up after 2 keys", err)
		}
		if len(aerr.Offered) != 4 || !strings.Contains(err.Error(), "agent "+ag.Sock) {
			t.Errorf("offered %v: %v", aerr.Offered, err)
		}
	})
	t.Run("deploy key in M2M_SSH_KEY beside IdentitiesOnly", func(t *testing.T) {
		deploy := sshtest.Keygen(t, t.TempDir(), "deploy", sshtest.KeyOptions{Type: "ecdsa"})
		srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{deploy.Public}, Extra: []string{"MaxAuthTries 2"}})
		text, _ := os.ReadFile(deploy.Path)
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent, tgt.IdentitiesOnly = "", true
		tgt.IdentityFiles = []string{filepath.Join(t.TempDir(), "missing_key")}
		log, buf := newLog()
		err := login(t, tgt, IdentityOptions{Logger: log, Getenv: mapEnv(map[string]string{
			"SSH_AUTH_SOCK": ag.Sock, "M2M_SSH_KEY": string(text)})})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "PRIVATE KEY") || strings.Contains(buf.String(), strings.Split(string(text), "\n")[1]) {
			t.Errorf("key text logged:\n%s", buf)
		}
	})
}

// TestE2EAgentDiscovery: SSH_AUTH_SOCK unset and no IdentityAgent, as
// under an MCP host; the agent is found in XDG_RUNTIME_DIR.
func TestE2EAgentDiscovery(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_agent", sshtest.KeyOptions{})
	ag := sshtest.StartAgent(t)
	ag.Add(t, key.Path)
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public}})
	for _, rel := range []string{"ssh-agent.socket", "keyring/ssh", "gnupg/S.gpg-agent.ssh"} {
		t.Run(rel, func(t *testing.T) {
			xdg := t.TempDir()
			sock := filepath.Join(xdg, rel)
			os.MkdirAll(filepath.Dir(sock), 0o700)
			if err := os.Symlink(ag.Sock, sock); err != nil {
				t.Fatal(err)
			}
			tgt := e2eTarget(t, srv, t.TempDir())
			tgt.IdentityAgent = ""
			log, buf := newLog()
			env := mapEnv(map[string]string{"XDG_RUNTIME_DIR": xdg, "HOME": t.TempDir()})
			if err := login(t, tgt, IdentityOptions{Getenv: env, Logger: log}); err != nil {
				t.Fatalf("%v\n%s", err, buf)
			}
			if !strings.Contains(buf.String(), "level=INFO") || !strings.Contains(buf.String(), sock) {
				t.Errorf("no INFO line naming %s:\n%s", sock, buf)
			}
		})
	}
	t.Run("IdentityAgent none", func(t *testing.T) {
		xdg := t.TempDir()
		os.Symlink(ag.Sock, filepath.Join(xdg, "ssh-agent.socket"))
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent = "none"
		err := login(t, tgt, IdentityOptions{Getenv: mapEnv(map[string]string{"XDG_RUNTIME_DIR": xdg, "SSH_AUTH_SOCK": ag.Sock})})
		var nerr *NoIdentitiesError
		if !errors.As(err, &nerr) || nerr.Hint() == "" {
			t.Fatalf("login = %v, want *NoIdentitiesError", err)
		}
	})
	t.Run("IdentityAgent with ~", func(t *testing.T) {
		home := t.TempDir()
		os.Symlink(ag.Sock, filepath.Join(home, "agent.sock"))
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent = "~/agent.sock"
		if err := login(t, tgt, IdentityOptions{Getenv: mapEnv(map[string]string{"HOME": home})}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestE2EKeyTypes logs in with each key type and format from a file. The
// sshd accepts only SHA-2 RSA signatures, so the rsa case proves
// rsa-sha2-256/512 signing.
func TestE2EKeyTypes(t *testing.T) {
	dir := t.TempDir()
	keys := map[string]sshtest.KeyOptions{
		"ed25519":   {},
		"ecdsa":     {Type: "ecdsa"},
		"ecdsa-384": {Type: "ecdsa", Bits: 384},
		"rsa":       {Type: "rsa", Bits: 2048},
		"rsa-pem":   {Type: "rsa", Bits: 2048, PEM: true},
		"ecdsa-pem": {Type: "ecdsa", PEM: true},
		"rsa-4096":  {Type: "rsa", Bits: 4096},
	}
	var pubs []string
	paths := map[string]string{}
	for name, o := range keys {
		k := sshtest.Keygen(t, dir, "id_"+name, o)
		pubs = append(pubs, k.Public)
		paths[name] = k.Path
	}
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: pubs, Extra: []string{
		"PubkeyAcceptedAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,rsa-sha2-512,rsa-sha2-256",
	}})
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			tgt := e2eTarget(t, srv, t.TempDir())
			tgt.IdentityFiles = []string{path}
			if err := login(t, tgt, IdentityOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestE2EEncryptedKey decrypts a key with each passphrase source.
func TestE2EEncryptedKey(t *testing.T) {
	const pass = "correct horse"
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_locked", sshtest.KeyOptions{Passphrase: pass})
	pemKey := sshtest.Keygen(t, dir, "id_locked_pem", sshtest.KeyOptions{Type: "rsa", Bits: 2048, PEM: true, Passphrase: pass})
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public, pemKey.Public}})

	promptFile := filepath.Join(dir, "prompt")
	askpass := filepath.Join(dir, "askpass.sh")
	os.WriteFile(askpass, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+promptFile+"\necho '"+pass+"'\n"), 0o700)
	wrongAskpass := filepath.Join(dir, "wrong.sh")
	os.WriteFile(wrongAskpass, []byte("#!/bin/sh\necho nope\n"), 0o700)

	tests := []struct {
		name    string
		opts    IdentityOptions
		env     map[string]string
		wantErr string
	}{
		{name: "option", opts: IdentityOptions{Passphrase: []byte(pass)}},
		{name: "M2M_SSH_PASSPHRASE", env: map[string]string{"M2M_SSH_PASSPHRASE": pass}},
		{name: "SSH_ASKPASS", env: map[string]string{"SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force"}},
		{name: "SSH_ASKPASS with a display", env: map[string]string{"SSH_ASKPASS": askpass, "WAYLAND_DISPLAY": "wayland-0"}},
		// ssh runs SSH_ASKPASS only with a display or when forced.
		{name: "SSH_ASKPASS without a display", env: map[string]string{"SSH_ASKPASS": askpass}, wantErr: "passphrase protected"},
		{name: "SSH_ASKPASS never", env: map[string]string{"SSH_ASKPASS": askpass, "DISPLAY": ":0", "SSH_ASKPASS_REQUIRE": "never"}, wantErr: "passphrase protected"},
		{name: "wrong option, right env", opts: IdentityOptions{Passphrase: []byte("x")}, env: map[string]string{"M2M_SSH_PASSPHRASE": pass}},
		{name: "none", wantErr: "passphrase protected"},
		{name: "wrong", env: map[string]string{"SSH_ASKPASS": wrongAskpass, "DISPLAY": ":0"}, wantErr: "cannot decrypt"},
	}
	for _, tt := range tests {
		for _, k := range []sshtest.Key{key, pemKey} {
			t.Run(tt.name+"/"+filepath.Base(k.Path), func(t *testing.T) {
				tgt := e2eTarget(t, srv, t.TempDir())
				tgt.IdentityFiles = []string{k.Path}
				log, buf := newLog()
				tt.opts.Getenv, tt.opts.Logger = mapEnv(tt.env), log
				err := login(t, tgt, tt.opts)
				if tt.wantErr == "" && err != nil {
					t.Fatal(err)
				}
				if tt.wantErr != "" {
					// With an askpass program to ask, a password
					// might still do: the login goes on, and fails.
					var nerr *NoIdentitiesError
					var aerr *AuthError
					if !errors.As(err, &nerr) && !errors.As(err, &aerr) || !strings.Contains(err.Error(), tt.wantErr) || verdict.Hint(err) == "" {
						t.Fatalf("login = %v, want *NoIdentitiesError or *AuthError with %q and a hint", err, tt.wantErr)
					}
				}
				if strings.Contains(buf.String(), pass) || err != nil && strings.Contains(err.Error(), pass) {
					t.Errorf("passphrase leaked:\n%s", buf)
				}
			})
		}
	}
	if p, _ := os.ReadFile(promptFile); !strings.Contains(string(p), "passphrase") {
		t.Errorf("askpass prompt = %q", p)
	}
}

// TestE2EUnprotectedKeyFile: a key file readable by others is refused as
// OpenSSH refuses it.
func TestE2EUnprotectedKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_open", sshtest.KeyOptions{})
	os.Chmod(key.Path, 0o644)
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public}})
	tgt := e2eTarget(t, srv, t.TempDir())
	tgt.IdentityFiles = []string{key.Path}
	err := login(t, tgt, IdentityOptions{})
	var kerr *KeyFileError
	if !errors.As(err, &kerr) || !strings.Contains(err.Error(), "UNPROTECTED PRIVATE KEY FILE") {
		t.Fatalf("login = %v, want UNPROTECTED PRIVATE KEY FILE", err)
	}
	var h interface{ Hint() string }
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "chmod 600 "+key.Path) {
		t.Errorf("hint = %q", h.Hint())
	}
	os.Chmod(key.Path, 0o600)
	if err := login(t, tgt, IdentityOptions{}); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}

// TestE2EUserCertificate logs in with certificates only: sshd trusts the
// CA, authorized_keys is empty.
func TestE2EUserCertificate(t *testing.T) {
	dir := t.TempDir()
	keygen := sshtest.LookPath(t, "ssh-keygen")
	ca := sshtest.Keygen(t, dir, "user_ca", sshtest.KeyOptions{})
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{Extra: []string{"TrustedUserCAKeys " + ca.Path + ".pub"}})
	sign := func(k sshtest.Key) string {
		sshtest.Run(t, keygen, "-q", "-s", ca.Path, "-I", "test", "-n", srv.User, "-V", "-5m:+1h", k.Path+".pub")
		return k.Path + "-cert.pub"
	}

	t.Run("KEY-cert.pub beside the key", func(t *testing.T) {
		k := sshtest.Keygen(t, t.TempDir(), "id_ed25519", sshtest.KeyOptions{})
		sign(k)
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityFiles = []string{k.Path}
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CertificateFile with the key in the agent", func(t *testing.T) {
		kdir := t.TempDir()
		k := sshtest.Keygen(t, kdir, "id_rsa", sshtest.KeyOptions{Type: "rsa", Bits: 2048})
		ag := sshtest.StartAgent(t)
		ag.Add(t, k.Path) // before signing: the agent holds only the plain key
		cert := filepath.Join(t.TempDir(), "elsewhere-cert.pub")
		os.Rename(sign(k), cert)
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityAgent, tgt.IdentitiesOnly = ag.Sock, true
		tgt.CertificateFiles = []string{cert}
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		k := sshtest.Keygen(t, t.TempDir(), "id_ed25519", sshtest.KeyOptions{})
		sshtest.Run(t, keygen, "-q", "-s", ca.Path, "-I", "old", "-n", srv.User, "-V", "20200101:20200102", k.Path+".pub")
		tgt := e2eTarget(t, srv, t.TempDir())
		tgt.IdentityFiles = []string{k.Path}
		err := login(t, tgt, IdentityOptions{})
		var aerr *AuthError
		if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "cert") {
			t.Fatalf("login = %v, want *AuthError listing the certificate", err)
		}
	})
}
