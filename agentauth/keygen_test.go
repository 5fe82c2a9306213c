package agentauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// A generated key is encrypted with --passphrase, else with
// M2M_SSH_PASSPHRASE, and with nothing only when neither is given.
func TestEnsureKey(t *testing.T) {
	cases := []struct {
		name, flag, env string
		want            string // the passphrase the key opens with; "" for none
	}{
		{"none", "", "", ""},
		{"flag", "s3cret", "", "s3cret"},
		{"env", "", "from-env", "from-env"},
		{"flag wins", "s3cret", "from-env", "s3cret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "new", "dir", "m2m_mcp_server_ssh_client")
			o := IdentityOptions{Passphrase: []byte(c.flag), Getenv: func(k string) string {
				if k == "M2M_SSH_PASSPHRASE" {
					return c.env
				}
				return ""
			}}
			created, err := EnsureKey(path, o)
			if err != nil || !created {
				t.Fatalf("EnsureKey = %v, %v", created, err)
			}
			for p, mode := range map[string]os.FileMode{path: 0o600, path + ".pub": 0o644, filepath.Dir(path): 0o700} {
				st, err := os.Stat(p)
				if err != nil || st.Mode().Perm() != mode {
					t.Errorf("%s: %v mode %v, want %v", p, err, st.Mode().Perm(), mode)
				}
			}
			data, _ := os.ReadFile(path)
			signer, err := ssh.ParsePrivateKey(data)
			var missing *ssh.PassphraseMissingError
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("the key does not open without a passphrase: %v", err)
			case c.want != "" && !errors.As(err, &missing):
				t.Fatalf("the key is not encrypted (parse without a passphrase: %v)", err)
			case c.want != "":
				if signer, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(c.want)); err != nil {
					t.Fatalf("the key does not open with %q: %v", c.want, err)
				}
			}
			pub, _ := os.ReadFile(path + ".pub")
			want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
			if strings.TrimSpace(string(pub)) != want || !strings.HasPrefix(want, "ssh-ed25519 ") {
				t.Errorf(".pub = %q, want %q (no comment)", pub, want)
			}
			created, err = EnsureKey(path, IdentityOptions{})
			if err != nil || created {
				t.Errorf("second EnsureKey = %v, %v", created, err)
			}
			if again, _ := os.ReadFile(path); string(again) != string(data) {
				t.Error("existing key overwritten")
			}
		})
	}
}
