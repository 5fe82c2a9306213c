package transport

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// A forwarded agent is usable on the remote side, and only when asked for.
func TestForwardAgent(t *testing.T) {
	l := newLab(t)
	agent := sshtest.StartAgent(t)
	agent.Add(t, l.key.Path)
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l.key.Public))
	if err != nil {
		t.Fatal(err)
	}
	fp := ssh.FingerprintSHA256(pub)

	cases := []struct {
		name    string
		opts    []string
		listed  bool   // ssh-add -l on the remote lists the key
		logged  string // in m2m-ssh's log
		skipped bool
	}{
		{name: "ForwardAgent yes", opts: []string{"IdentityAgent=" + agent.Sock, "ForwardAgent=yes"}, listed: true, logged: "asked for agent forwarding"},
		{name: "ForwardAgent socket", opts: []string{"ForwardAgent=" + agent.Sock}, listed: true},
		{name: "not asked for", opts: []string{"IdentityAgent=" + agent.Sock}},
		{name: "no agent to forward", opts: []string{"ForwardAgent=yes"}, logged: "no agent is in use"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := l.dialer(t, "target", c.opts...)
			out, err := runOn(t, d, "ssh-add -l")
			if c.listed {
				if err != nil || !strings.Contains(out, fp) {
					t.Fatalf("ssh-add -l on the remote: %q, %v; want %s listed", out, err, fp)
				}
			} else {
				// ssh-add exits 2 when it finds no agent.
				var ee *ExitError
				if !errors.As(err, &ee) || ee.Status != 2 || strings.Contains(out, fp) {
					t.Fatalf("ssh-add -l on the remote: %q, %v; want no agent (status 2)", out, err)
				}
			}
			if c.logged != "" && !strings.Contains(l.log.String(), c.logged) {
				t.Errorf("log lacks %q", c.logged)
			}
		})
	}
}

// SetEnv and the variables SendEnv names reach the remote program; each
// variable sent is a debug line, named without its value, so that one sshd
// refuses can be told from one never sent.
func TestEnvRequests(t *testing.T) {
	l := newLab(t)
	t.Setenv("M2M_SENDME", "two")
	t.Setenv("M2M_NOTSENT", "x")
	t.Setenv("OTHER_SENDME", "secret-value")
	d := l.dialer(t, "target",
		"SetEnv=M2M_SET=one M2M_SENDME=set-wins",
		"SendEnv=M2M_SEND* OTHER_SEND?E")
	out, err := runOn(t, d, `printf '%s|%s|%s|%s\n' "$M2M_SET" "$M2M_SENDME" "$M2M_NOTSENT" "$OTHER_SENDME"`)
	if err != nil {
		t.Fatal(err)
	}
	if want := "one|set-wins||\n"; out != want {
		t.Fatalf("remote saw %q, want %q", out, want)
	}
	log := l.log.String()
	if !strings.Contains(log, "level=DEBUG") || !strings.Contains(log, "name=OTHER_SENDME") {
		t.Errorf("the variable sshd refuses was not named at debug:\n%s", log)
	}
	if strings.Contains(log, "secret-value") {
		t.Error("a variable's value was logged")
	}
}

// An agent that goes away after forwarding began (restarted, its socket
// left behind) fails the remote's use of it at once, as with ssh: the
// agent channel is refused, not accepted and left open with ssh-add
// waiting on it for ever.
func TestForwardAgentGone(t *testing.T) {
	l := newLab(t)
	agent := sshtest.StartAgent(t)
	agent.Add(t, l.key.Path)
	d := l.dialer(t, "target", "ForwardAgent="+agent.Sock)
	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	r, err := SSH(d, Program{Command: `read go; ssh-add -l; echo "status=$?"`})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	agent.Stop()
	if _, err := io.WriteString(r, "go\n"); err != nil {
		t.Fatal(err)
	}
	out := sshtest.Within(t, testBound, func() string {
		b, _ := io.ReadAll(r)
		return string(b)
	})
	if !strings.Contains(out, "status=") || strings.Contains(out, "status=0") {
		t.Errorf("ssh-add -l on the remote, the agent gone: %q; want it to fail", out)
	}
	if log := l.log.String(); !strings.Contains(log, "cannot be reached; refused") {
		t.Errorf("the refusal was not logged:\n%s", log)
	}
}
