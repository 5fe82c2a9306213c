package agentauth

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
)

// TestE2ELoginPassword logs in to a real sshd that wants a key and then a
// password ("AuthenticationMethods publickey,password"), or a key and then
// keyboard-interactive answers through PAM, as the account .ci/run gives
// a password; the askpass program answers and records its prompts.
func TestE2ELoginPassword(t *testing.T) {
	u, pass := sshtest.Password(t)
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_pass", sshtest.KeyOptions{})
	password := []string{"PasswordAuthentication yes", "AuthenticationMethods publickey,password"}
	kbdint := []string{"UsePAM yes", "KbdInteractiveAuthentication yes", "AuthenticationMethods publickey,keyboard-interactive"}
	pwPrompt := u.Username + "@127.0.0.1's password: "
	kbdPrompt := "(" + u.Username + "@127.0.0.1) Password: "
	tests := []struct {
		name     string
		sshd     []string
		opts     []string
		answers  []string
		prompts  []string
		wantErr  string
		wantHint string
		timeout  time.Duration
	}{
		{name: "publickey,password", sshd: password, answers: []string{pass}, prompts: []string{pwPrompt}},
		{name: "publickey,password wrong twice, then right", sshd: password, answers: []string{"wrong", "wrong", pass}, prompts: []string{pwPrompt, pwPrompt, pwPrompt}},
		{name: "NumberOfPasswordPrompts 2", sshd: password, opts: []string{"NumberOfPasswordPrompts 2"},
			answers: []string{"wrong", "wrong", pass}, prompts: []string{pwPrompt, pwPrompt},
			wantErr: "the password was refused (2 tries)", wantHint: "SSH_ASKPASS"},
		{name: "BatchMode asks nobody", sshd: password, opts: []string{"BatchMode yes"},
			answers: []string{pass}, wantErr: "the server accepts password", wantHint: "BatchMode is on"},
		{name: "PasswordAuthentication no", sshd: password, opts: []string{"PasswordAuthentication no"},
			answers: []string{pass}, wantErr: "the server accepts password"},
		{name: "publickey,keyboard-interactive through PAM", sshd: kbdint, answers: []string{pass}, prompts: []string{kbdPrompt}},
		{name: "keyboard-interactive wrong once", sshd: kbdint, answers: []string{"wrong", pass}, prompts: []string{kbdPrompt, kbdPrompt}},
		{name: "askpass hangs", sshd: password, timeout: 2 * time.Second, wantErr: "did not answer within 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public}, LoginUser: u.Username, Settings: tt.sshd})
			adir := t.TempDir()
			prog := askpassScript(t, adir, tt.answers...)
			if tt.timeout > 0 {
				prog = writeScript(t, adir, "hang", `printf '%s\n' "$1" >> `+adir+`/prompts`, "exec sleep 600")
				tt.prompts = []string{pwPrompt}
			}
			env := map[string]string{"SSH_ASKPASS": prog, "SSH_ASKPASS_REQUIRE": "force"}
			tgt := resolveFor(t, srv.Addr(), append([]string{"IdentityFile " + key.Path, "User " + u.Username}, tt.opts...)...)
			log, buf := newLog()
			err := sshtest.Within(t, time.Minute, func() error {
				return loginTo(t, srv.Addr(), tgt, IdentityOptions{Getenv: mapEnv(env), Logger: log, askpassTimeout: tt.timeout})
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("login: %v\n%s", err, buf)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("login = %v; want an error with %q", err, tt.wantErr)
			case err != nil && !strings.Contains(verdict.Hint(err), tt.wantHint):
				t.Errorf("hint %q; want it to mention %q", verdict.Hint(err), tt.wantHint)
			}
			if got := readLines(t, filepath.Join(adir, "prompts")); !slices.Equal(got, tt.prompts) {
				t.Errorf("askpass was asked %q; want %q", got, tt.prompts)
			}
			// sshd's word that the key was the first step, logged
			// before it asked for the second.
			if tt.wantErr == "" {
				srv.WaitLog(t, "Partial publickey for "+u.Username)
			}
			if strings.Contains(buf.String(), pass) || err != nil && strings.Contains(err.Error(), pass) {
				t.Errorf("the password leaked:\n%v\n%s", err, buf)
			}
			var ae *AskpassError
			if tt.timeout > 0 && !errors.As(err, &ae) {
				t.Errorf("login = %v; want an *AskpassError", err)
			}
		})
	}
}
