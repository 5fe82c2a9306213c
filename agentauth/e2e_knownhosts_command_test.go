package agentauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// knownHostsCommandWorld is a real sshd whose host key only a
// KnownHostsCommand knows, and an ssh config naming a recorder as that
// command: it appends its arguments, one line per run, to a file.
type knownHostsCommandWorld struct {
	srv    *sshtest.SSHD
	key    sshtest.Key
	dir    string
	record string
}

func newKnownHostsCommandWorld(t *testing.T) *knownHostsCommandWorld {
	t.Helper()
	w := &knownHostsCommandWorld{dir: t.TempDir()}
	w.key = sshtest.Keygen(t, w.dir, "id_login", sshtest.KeyOptions{})
	w.srv = sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{w.key.Public}})
	sshtest.WriteFile(t, w.dir, "keys", w.srv.KnownHosts()...)
	return w
}

// config writes an ssh config whose KnownHostsCommand is a script with
// the given body; the script first records its arguments.
func (w *knownHostsCommandWorld) config(t *testing.T, name, args string, body ...string) string {
	t.Helper()
	w.record = filepath.Join(w.dir, name+".args")
	script := writeScript(t, w.dir, name, append([]string{`printf '%s|' "$@" >> ` + w.record + `; echo >> ` + w.record}, body...)...)
	return sshtest.WriteFile(t, w.dir, name+".config",
		"Host box",
		"  HostName "+w.srv.Host,
		fmt.Sprintf("  Port %d", w.srv.Port),
		"  User "+w.srv.User,
		"  IdentityFile "+w.key.Path,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  BatchMode yes",
		"  UserKnownHostsFile /dev/null",
		"  GlobalKnownHostsFile /dev/null",
		"  StrictHostKeyChecking yes",
		"  KnownHostsCommand "+script+" "+args,
	)
}

func (w *knownHostsCommandWorld) login(t *testing.T, config string, timeout time.Duration) error {
	t.Helper()
	tgt, err := sshcfg.Resolve("box", sshcfg.Options{ConfigFile: config})
	if err != nil {
		t.Fatal(err)
	}
	return sshtest.Within(t, time.Minute, func() error {
		return loginWithChecker(t, tgt, timeout)
	})
}

// loginWithChecker logs in to tgt with its host key checker, the
// KnownHostsCommand bound shortened to timeout when set.
func loginWithChecker(t *testing.T, tgt *sshcfg.Target, timeout time.Duration) error {
	t.Helper()
	ids, err := LoadIdentities(tgt, IdentityOptions{Getenv: func(string) string { return "" }})
	if err != nil {
		return err
	}
	defer ids.Close()
	hk, err := NewHostKeyChecker(tgt, HostKeyOptions{commandTimeout: timeout})
	if err != nil {
		return err
	}
	c, err := ssh.Dial("tcp", tgt.Addr(), &ssh.ClientConfig{
		User: tgt.User, Auth: []ssh.AuthMethod{ids.AuthMethod()},
		HostKeyCallback: hk.Callback(), HostKeyAlgorithms: hk.Algorithms(), Timeout: time.Minute,
	})
	if err != nil {
		return err
	}
	return c.Close()
}

// TestE2EKnownHostsCommandLikeSSH: ssh and m2m-ssh run KnownHostsCommand
// with the same arguments (the same tokens expanded, argv[0] untouched,
// the same invocations), and both trust the key it prints.
func TestE2EKnownHostsCommandLikeSSH(t *testing.T) {
	sshPath := sshtest.LookPath(t, "ssh")
	w := newKnownHostsCommandWorld(t)
	// %k too once it is the alias as given (the algorithms branch).
	args := `%H %I %t %f %K %h %p %r %n %u %C %l %L %d %i %% '%h with spaces' "#notacomment"`
	cfg := w.config(t, "recorder", args, "cat "+filepath.Join(w.dir, "keys"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, sshPath, "-F", cfg, "box", "true").CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v\n%s", err, out)
	}
	byssh := readLines(t, w.record)
	os.Remove(w.record)

	if err := w.login(t, cfg, 0); err != nil {
		t.Fatalf("login: %v", err)
	}
	bym2m := readLines(t, w.record)
	slices.Sort(byssh)
	slices.Sort(bym2m)
	if !slices.Equal(byssh, bym2m) {
		t.Errorf("KnownHostsCommand arguments differ:\nssh     %q\nm2m-ssh %q", byssh, bym2m)
	}
	if len(byssh) < 2 || !strings.Contains(strings.Join(byssh, "\n"), "|HOSTNAME|") || !strings.Contains(strings.Join(byssh, "\n"), "|ORDER|") {
		t.Errorf("ssh ran it %d times, without both invocations: the test proves less than it claims\n%q", len(byssh), byssh)
	}
}

// TestE2EKnownHostsCommandHostile: a command that fails, hangs, floods
// or prints nothing useful ends the login within bounds, with the reason.
func TestE2EKnownHostsCommandHostile(t *testing.T) {
	w := newKnownHostsCommandWorld(t)
	keys := filepath.Join(w.dir, "keys")
	tests := []struct {
		name string
		body []string
		want string
	}{
		{"exits non-zero", []string{"cat " + keys, "echo 'no service' >&2", "exit 3"}, "KnownHostsCommand failed: "},
		{"hangs", []string{"exec sleep 600"}, "did not finish within 2s"},
		{"floods", []string{"exec yes 'host ssh-ed25519 AAAA'"}, "printed more than"},
		{"prints garbage", []string{"echo 'not a known_hosts line'", "head -c 5000 /dev/urandom"}, "is not in known_hosts"},
		{"prints another key", []string{"echo '[127.0.0.1]:1 " + w.key.Public + "'"}, "is not in known_hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := w.config(t, strings.ReplaceAll(tt.name, " ", "-"), "%H", tt.body...)
			err := w.login(t, cfg, 2*time.Second)
			if err == nil || !strings.Contains(err.Error(), tt.want) || verdict.Hint(err) == "" {
				t.Fatalf("login = %v (hint %q); want an error with %q and a hint", err, verdict.Hint(err), tt.want)
			}
			var ke *KnownHostsCommandError
			var he *HostKeyError
			if !errors.As(err, &ke) && !errors.As(err, &he) {
				t.Errorf("login = %T; want a *KnownHostsCommandError or *HostKeyError", err)
			}
			if tt.name == "exits non-zero" && !strings.Contains(err.Error(), "exited with status 3: no service") {
				t.Errorf("the error does not say how it failed: %v", err)
			}
		})
	}
}

// TestE2EKnownHostsCommandChattyStderr: a command that says much on stderr
// (progress, warnings) and prints the keys works, with ssh and m2m-ssh;
// only its first line is kept, for an error.
func TestE2EKnownHostsCommandChattyStderr(t *testing.T) {
	sshPath := sshtest.LookPath(t, "ssh")
	w := newKnownHostsCommandWorld(t)
	cfg := w.config(t, "chatty", "%H", "head -c 65536 /dev/zero | tr '\\0' x >&2", "echo >&2", "cat "+filepath.Join(w.dir, "keys"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, sshPath, "-F", cfg, "box", "true").CombinedOutput(); err != nil {
		t.Fatalf("ssh: %v\n%.300s", err, out)
	}
	if err := w.login(t, cfg, 0); err != nil {
		t.Fatalf("login: %.300v", err)
	}
}
