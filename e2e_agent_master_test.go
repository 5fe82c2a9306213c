//go:build linux

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// remoteAgent is SSH_AUTH_SOCK as the remote MCP server that cmd starts
// sees it: set by sshd only when agent forwarding was asked for and
// granted on the session.
func remoteAgent(t *testing.T, ctx context.Context, cmd *exec.Cmd) string {
	t.Helper()
	s, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "env", Arguments: map[string]any{"name": "SSH_AUTH_SOCK"}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// ForwardAgent (-A) through a master works as ssh -A -S does: the session
// asks for the agent, and a master whose own ForwardAgent is on forwards
// the agent it holds. Both ways round: m2m-ssh riding OpenSSH's master,
// and ssh -S riding m2m-ssh's. (Once one session of a connection has the
// agent, sshd gives it to every later one: whether a session that does
// not ask is asked for is in mux's TestServerForwardsAgentWhenAsked.)
func TestAgentThroughMaster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()

	t.Run("OpenSSH's master", func(t *testing.T) {
		w := newWorld(t)
		m := sshtest.StartMaster(t, w.sshd, w.key, "ForwardAgent "+w.agent.Sock)
		ride := func(extra ...string) *exec.Cmd {
			return w.bareCommand(append(append([]string{"-o", "ControlPath=" + m.Path}, extra...), "buildbox", "--", bins.testmcp)...)
		}
		if got := remoteAgent(t, ctx, ride()); got != "" {
			t.Errorf("without -A, the remote has SSH_AUTH_SOCK=%s", got)
		}
		if got := remoteAgent(t, ctx, ride("-A")); got == "" {
			t.Errorf("with -A, the remote has no SSH_AUTH_SOCK: the master was not asked to forward its agent")
		}
	})

	// m2m-ssh's master forwards when its own ForwardAgent is on: the
	// first session starts it, with -A or without. A relative agent
	// socket is the starter's, though the master leaves its directory.
	for _, c := range []struct {
		name     string
		first    []string // the first session's options: the master's
		relative bool     // the first session names its agent relative to its directory
		forwards bool
	}{
		{"m2m-ssh's master, ForwardAgent yes", []string{"-A"}, false, true},
		{"m2m-ssh's master, ForwardAgent no", nil, false, false},
		{"m2m-ssh's master, a relative IdentityAgent", []string{"-A"}, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSharing(t, "yes")
			opts := c.first
			if c.relative {
				opts = append(opts, "-o", "IdentityAgent=./"+filepath.Base(s.w.agent.Sock))
			}
			first := s.command(t, opts...)
			if c.relative {
				first.Dir = filepath.Dir(s.w.agent.Sock)
			}
			cs, err := connect(t, ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			cs.Close()
			cmd := s.command(t, "-A")
			if got := remoteAgent(t, ctx, cmd); (got != "") != c.forwards {
				t.Errorf("with -A, the remote has SSH_AUTH_SOCK=%q:\n%s\nthe master's log:\n%s", got, cmd.Stderr, s.masterLog(t))
			}
			// The forwarded agent is the one the master holds, and
			// it answers: ssh-add -l on the remote lists the user's
			// key. ssh-add exits 2 when it finds no agent.
			fp := s.w.key.Fingerprint(t)
			out, code := s.ssh(t, ctx, "-A", "buildbox", "ssh-add -l")
			if c.forwards && (code != 0 || !strings.Contains(out, fp)) {
				t.Errorf("ssh -A -S buildbox ssh-add -l: status %d, %q; want %s listed\nthe master's log:\n%s", code, out, fp, s.masterLog(t))
			}
			if !c.forwards && code != 2 {
				t.Errorf("ssh -A -S buildbox ssh-add -l: status %d, %q; want no agent", code, out)
			}
			if got := s.relay.Accepted(); got != 1 {
				t.Errorf("%d connections reached sshd; want 1", got)
			}
		})
	}
}
