package agentauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestEnsureKey(t *testing.T) {
	for _, pass := range []string{"", "s3cret"} {
		path := filepath.Join(t.TempDir(), "new", "dir", "m2m_mcp_server_ssh_client")
		created, err := EnsureKey(path, []byte(pass))
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
		var signer ssh.Signer
		if pass == "" {
			signer, err = ssh.ParsePrivateKey(data)
		} else {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
		}
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := os.ReadFile(path + ".pub")
		want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
		if strings.TrimSpace(string(pub)) != want || !strings.HasPrefix(want, "ssh-ed25519 ") {
			t.Errorf(".pub = %q, want %q (no comment)", pub, want)
		}
		created, err = EnsureKey(path, nil)
		if err != nil || created {
			t.Errorf("second EnsureKey = %v, %v", created, err)
		}
		again, _ := os.ReadFile(path)
		if string(again) != string(data) {
			t.Error("existing key overwritten")
		}
	}
}
