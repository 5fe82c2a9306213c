package agentauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// startKeyring serves an in-process agent holding keys on a socket in dir.
func startKeyring(t *testing.T, dir string, keys ...ed25519.PrivateKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	return sshtest.Serve(t, "unix", filepath.Join(dir, "a.sock"), func(c net.Conn) { agent.ServeAgent(kr, c) })
}

func newEd25519(t *testing.T) (ed25519.PrivateKey, ssh.PublicKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	return priv, s.PublicKey()
}

// writeKey writes priv as an OpenSSH key file (0600) with its .pub.
func writeKey(t *testing.T, path string, priv ed25519.PrivateKey) {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, pemEncode(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(s.PublicKey()), 0o644)
}

func TestIdentityOrderAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	shared, sharedPub := newEd25519(t) // in the agent and in a file
	agentOnly, agentOnlyPub := newEd25519(t)
	explicit, explicitPub := newEd25519(t)
	def, defPub := newEd25519(t)
	sock := startKeyring(t, dir, agentOnly, shared)

	home := filepath.Join(dir, "home")
	explicitPath := filepath.Join(home, "keys", "deploy")
	sharedPath := filepath.Join(home, "keys", "shared")
	defPath := filepath.Join(home, ".ssh", "id_ed25519")
	writeKey(t, explicitPath, explicit)
	writeKey(t, sharedPath, shared)
	writeKey(t, defPath, def)
	missingDefault := filepath.Join(home, ".ssh", "id_rsa")

	tests := []struct {
		name           string
		identitiesOnly bool
		want           []ssh.PublicKey
	}{
		{"all", false, []ssh.PublicKey{explicitPub, sharedPub, agentOnlyPub, defPub}},
		{"IdentitiesOnly", true, []ssh.PublicKey{explicitPub, sharedPub, defPub}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, buf := newLog()
			tgt := &sshcfg.Target{User: "u", Alias: "box", IdentityAgent: sock, IdentitiesOnly: tt.identitiesOnly,
				IdentityFiles: []string{explicitPath, sharedPath, defPath, missingDefault}}
			ids, err := LoadIdentities(tgt, IdentityOptions{Logger: log, Getenv: mapEnv(nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer ids.Close()
			got := ids.Signers()
			if len(got) != len(tt.want) {
				t.Fatalf("%d signers, want %d: %v", len(got), len(tt.want), ids.Offered())
			}
			for i := range got {
				if !keysEqual(got[i].PublicKey(), tt.want[i]) {
					t.Errorf("signer %d is %v", i, ids.Offered()[i])
				}
			}
			if ids.AgentSocket() != sock {
				t.Error("agent not kept")
			}
			if strings.Contains(buf.String(), "id_rsa") && strings.Contains(buf.String(), "WARN") {
				t.Errorf("missing default key warned about:\n%s", buf)
			}
		})
	}
}

func TestMissingExplicitKeyWarns(t *testing.T) {
	dir := t.TempDir()
	priv, _ := newEd25519(t)
	good := filepath.Join(dir, "good")
	writeKey(t, good, priv)
	missing := filepath.Join(dir, "missing")
	log, buf := newLog()
	tgt := &sshcfg.Target{IdentityAgent: "none", IdentityFiles: []string{missing, good}}
	ids, err := LoadIdentities(tgt, IdentityOptions{Logger: log, Getenv: mapEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids.Signers()) != 1 || !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), missing) {
		t.Errorf("signers %v, log:\n%s", ids.Offered(), buf)
	}

	_, err = LoadIdentities(&sshcfg.Target{IdentityAgent: "none", IdentityFiles: []string{missing}}, IdentityOptions{Getenv: mapEnv(nil)})
	var nerr *NoIdentitiesError
	if !errors.As(err, &nerr) || !strings.Contains(err.Error(), missing) {
		t.Errorf("only a missing key: %v", err)
	}
}

func TestAuthErrorOnlyForAuthFailures(t *testing.T) {
	ids := &Identities{t: &sshcfg.Target{User: "u", Alias: "box"}}
	other := errors.New("dial tcp: connection refused")
	if got := ids.AuthError(other); got != other {
		t.Errorf("AuthError(%v) = %v", other, got)
	}
	if ids.AuthError(nil) != nil {
		t.Error("AuthError(nil) != nil")
	}
	err := ids.AuthError(errors.New("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain"))
	var aerr *AuthError
	if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "Authentication failed for u@box") {
		t.Errorf("got %v", err)
	}
}

// TestAuthErrorFromServer runs an in-process server refusing every key.
func TestAuthErrorFromServer(t *testing.T) {
	host := fixtureKey(t, "host_ed25519")
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		return nil, errors.New("no")
	}}
	cfg.AddHostKey(host)
	// net.Pipe is unbuffered and both sides send their version first:
	// a loopback socket instead.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		ssh.NewServerConn(c, cfg)
		c.Close()
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	dir := t.TempDir()
	priv, pub := newEd25519(t)
	writeKey(t, filepath.Join(dir, "k"), priv)
	tgt := &sshcfg.Target{User: "u", Alias: "box", HostName: "plain.example", Port: 22, IdentityAgent: "none",
		IdentityFiles: []string{filepath.Join(dir, "k")}, UserKnownHostsFiles: []string{fixture("known_hosts")}}
	ids, err := LoadIdentities(tgt, IdentityOptions{Getenv: mapEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	hk, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
	_, _, _, err = ssh.NewClientConn(c1, "ignored:22", &ssh.ClientConfig{User: "u", Auth: []ssh.AuthMethod{ids.AuthMethod()},
		HostKeyCallback: hk.Callback(), HostKeyAlgorithms: hk.Algorithms()})
	err = ids.AuthError(err)
	var aerr *AuthError
	if !errors.As(err, &aerr) || len(aerr.Offered) != 1 || aerr.Offered[0].Fingerprint != ssh.FingerprintSHA256(pub) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "k")) || !strings.Contains(aerr.Hint(), "authorized_keys") {
		t.Errorf("error %q hint %q", err, aerr.Hint())
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
