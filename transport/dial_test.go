package transport

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// Every way to reach the target runs the command there, and goes through
// exactly the relays it should.
func TestDialPaths(t *testing.T) {
	l := newLab(t)
	cases := []struct {
		name       string
		alias      string
		opts       []string
		hop1, hop2 int // connections each jump relay should see
		needs      string
	}{
		{name: "direct", alias: "target"},
		{name: "ProxyJump one hop", alias: "target-jump1", hop1: 1},
		{name: "ProxyJump two hops", alias: "target-jump2", hop1: 1, hop2: 1},
		{name: "ProxyJump user@host:port", alias: "target-jump-literal", hop1: 1},
		{name: "ProxyJump from -o (as -J)", alias: "target", opts: []string{"ProxyJump=hop2,hop1"}, hop1: 1, hop2: 1},
		{name: "ProxyJump none", alias: "target-jump2", opts: []string{"ProxyJump=none"}},
		{name: "ProxyCommand ssh -W", alias: "target-sshw", hop1: 1, needs: "ssh"},
		{name: "ProxyCommand nc", alias: "target-nc", needs: "nc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" {
				sshtest.LookPath(t, c.needs)
			}
			before1, before2 := l.hop1.Accepted(), l.hop2.Accepted()
			d := l.dialer(t, c.alias, c.opts...)
			out, err := runOn(t, d, "echo reached $USER")
			if err != nil {
				t.Fatalf("command ended with %v", err)
			}
			if want := "reached " + l.sshd.User + "\n"; out != want {
				t.Fatalf("output %q, want %q", out, want)
			}
			if got := l.hop1.Accepted() - before1; got != c.hop1 {
				t.Errorf("hop1 saw %d connections, want %d", got, c.hop1)
			}
			if got := l.hop2.Accepted() - before2; got != c.hop2 {
				t.Errorf("hop2 saw %d connections, want %d", got, c.hop2)
			}
		})
	}
}

// The chain really runs through each hop: cutting the first hop's
// connection ends the session on the target.
func TestJumpHostLossEndsSession(t *testing.T) {
	l := newLab(t)
	d := l.dialer(t, "target-jump2")
	r, ended := startCat(t, d)
	l.hop1.Cut()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("read succeeded after the jump host's connection was cut")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived its jump host's connection")
	}
	if err := r.Wait(); !errors.Is(err, ErrNoExitStatus) {
		t.Fatalf("Wait = %v, want no exit status", err)
	}
}

// Failures name the hop that failed and say what to do.
func TestDialErrors(t *testing.T) {
	l := newLab(t)
	l.wire.BlackHole()
	cases := []struct {
		name    string
		alias   string
		opts    []string
		want    []string // in the error
		hint    string
		timeout time.Duration // the failure must come within this
	}{
		{
			name: "black-holed target", alias: "target-wire", opts: []string{"ConnectTimeout=1"},
			want: []string{"target-wire", "Connection timed out", "after 1s"}, hint: "ConnectTimeout", timeout: 1 * time.Second,
		},
		{
			// -o options do not reach jump hosts (as with ssh -J): the
			// jump host's own ConnectTimeout applies.
			name: "black-holed jump host", alias: "target-jump-wire", opts: []string{"ConnectTimeout=30"},
			want: []string{"jump host hop-wire", "on the way to target-jump-wire", "Connection timed out", "after 1s"}, hint: "hop-wire", timeout: 1 * time.Second,
		},
		{
			name: "refused beyond the jump host", alias: "target-jump-refused",
			want: []string{"target-jump-refused", "via hop1", "Connection refused"}, hint: "jump host hop1 could not reach", timeout: 10 * time.Second,
		},
		{
			name: "ProxyCommand fails", alias: "target-proxy-fails",
			want: []string{"target-proxy-fails", "ProxyCommand exited with status 3: no route to target-proxy-fails"}, hint: "run the ProxyCommand by hand", timeout: 10 * time.Second,
		},
		{
			name: "ProxyCommand hangs", alias: "target", opts: []string{"ProxyCommand=sleep 60", "ConnectTimeout=1"},
			want: []string{"Connection timed out during the SSH handshake (after 1s)"}, hint: "ConnectTimeout", timeout: 1 * time.Second,
		},
		{
			name: "unknown ProxyCommand token", alias: "target", opts: []string{"ProxyCommand=nc %h %z"},
			want: []string{"unknown token %z"}, timeout: 10 * time.Second,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := l.dialer(t, c.alias, c.opts...)
			start := time.Now()
			_, err := d.Dial(context.Background())
			took := time.Since(start)
			if err == nil {
				t.Fatal("connected")
			}
			var h interface{ Hint() string }
			errors.As(err, &h)
			t.Logf("error: %v\nhint: %v", err, h.Hint())
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if c.hint != "" && (h == nil || !strings.Contains(h.Hint(), c.hint)) {
				t.Errorf("error %q: hint lacks %q", err, c.hint)
			}
			// Timeouts are the subject here, so bound them: the budget
			// plus room for a loaded machine, and for a timeout, not
			// before it (this is the one proof of ConnectTimeout's
			// timing; the end-to-end test checks what the host is told).
			if limit := c.timeout + 3*time.Second; took > limit {
				t.Errorf("failed after %s, want within %s", took, limit)
			}
			if strings.Contains(err.Error(), "timed out") && took < c.timeout {
				t.Errorf("timed out after %s, before the timeout of %s", took, c.timeout)
			}
		})
	}
}
