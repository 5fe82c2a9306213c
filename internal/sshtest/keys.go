package sshtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Key is a key pair written by ssh-keygen.
type Key struct {
	Path string // private key file
	// Public is the public key line ("ssh-ed25519 AAAA... comment"),
	// as it goes into authorized_keys or known_hosts.
	Public string
}

// Fingerprint is the key's SHA256 fingerprint, as ssh-add -l and
// ssh-keygen -l print it.
func (k Key) Fingerprint(t testing.TB) string {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.Public))
	if err != nil {
		t.Fatalf("the public key of %s: %v", k.Path, err)
	}
	return ssh.FingerprintSHA256(pub)
}

// KeyOptions are ssh-keygen's choices; the zero value is an unencrypted
// ed25519 key.
type KeyOptions struct {
	Type       string // ed25519 (default), ecdsa, rsa
	Bits       int    // for rsa and ecdsa
	Passphrase string
	Comment    string
	PEM        bool // PEM (PKCS#1/SEC1) instead of the OpenSSH format
}

// Keygen makes a key pair named name in dir with ssh-keygen.
func Keygen(t testing.TB, dir, name string, o KeyOptions) Key {
	t.Helper()
	keygen := LookPath(t, "ssh-keygen")
	if o.Type == "" {
		o.Type = "ed25519"
	}
	if o.Comment == "" {
		o.Comment = name
	}
	path := filepath.Join(dir, name)
	args := []string{"-q", "-t", o.Type, "-N", o.Passphrase, "-C", o.Comment, "-f", path}
	if o.Bits != 0 {
		args = append(args, "-b", strconv.Itoa(o.Bits))
	}
	if o.PEM {
		args = append(args, "-m", "PEM")
	}
	Run(t, keygen, args...)
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return Key{Path: path, Public: strings.TrimSpace(string(pub))}
}

// WriteFile writes lines to dir/name, one per line, with mode 0600.
func WriteFile(t testing.TB, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
