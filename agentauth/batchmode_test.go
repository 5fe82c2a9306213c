package agentauth

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// TestBatchModeAsksNoPassphrase: with BatchMode ssh tries an encrypted
// key with the empty passphrase only and never runs SSH_ASKPASS for it
// (load_identity_file quits at the first wrong passphrase); m2m-ssh's own
// sources, --passphrase and M2M_SSH_PASSPHRASE, are given, not asked.
func TestBatchModeAsksNoPassphrase(t *testing.T) {
	const pass = "correct horse"
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_locked", sshtest.KeyOptions{Passphrase: pass})
	tests := []struct {
		name   string
		env    map[string]string
		loaded bool
	}{
		{"askpass forced", map[string]string{"SSH_ASKPASS_REQUIRE": "force"}, false},
		{"askpass with a display", map[string]string{"DISPLAY": ":0"}, false},
		{"M2M_SSH_PASSPHRASE", map[string]string{"SSH_ASKPASS_REQUIRE": "force", "M2M_SSH_PASSPHRASE": pass}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adir := t.TempDir()
			tt.env["SSH_ASKPASS"] = askpassScript(t, adir, pass, pass, pass)
			tgt := &sshcfg.Target{Alias: "box", HostName: "box.example", Port: 22, User: "u",
				IdentityAgent: "none", BatchMode: true, IdentityFiles: []string{key.Path}}
			log, _ := newLog()
			ids, err := LoadIdentities(tgt, IdentityOptions{Getenv: mapEnv(tt.env), Logger: log})
			if err == nil {
				defer ids.Close()
			}
			if loaded := err == nil && len(ids.Signers()) == 1; loaded != tt.loaded {
				t.Errorf("key loaded %v (err %v), want %v", loaded, err, tt.loaded)
			}
			// Not "cannot decrypt it": nothing was tried.
			if !tt.loaded && (err == nil || !strings.Contains(err.Error(), "passphrase protected")) {
				t.Errorf("err = %v, want the key passphrase protected", err)
			}
			if p := readLines(t, filepath.Join(adir, "prompts")); len(p) > 0 {
				t.Errorf("SSH_ASKPASS ran in BatchMode, asked %q", p)
			}
		})
	}
}
