package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// -J, -A and SetEnv through the whole command: the MCP server on the far
// side sees the variables and the forwarded agent.
func TestEndToEndReach(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		args []string
		env  map[string]string // variable → what the remote sees; "*" for anything set
		log  string            // in m2m-ssh's stderr
	}{
		{
			name: "jump host and SetEnv",
			args: []string{"--log-level", "DEBUG", "-J", "buildbox", "-o", "SetEnv=M2M_E2E=yes", "buildbox-exec"},
			env:  map[string]string{"M2M_E2E": "yes", "SSH_AUTH_SOCK": ""},
			log:  "through jump host",
		},
		{
			name: "forwarded agent",
			args: []string{"-A", "buildbox-exec"},
			env:  map[string]string{"SSH_AUTH_SOCK": "*", "M2M_E2E": ""},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := w.command(c.args...)
			s, err := connect(t, ctx, cmd)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			for name, want := range c.env {
				res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "env", Arguments: map[string]any{"name": name}})
				if err != nil {
					t.Fatalf("tools/call env %s: %v", name, err)
				}
				got := res.Content[0].(*mcp.TextContent).Text
				if (want == "*" && got == "") || (want != "*" && got != want) {
					t.Errorf("remote %s = %q, want %q", name, got, want)
				}
			}
			s.Close()
			if c.log != "" {
				stderr := cmd.Stderr.(*sshtest.Buffer).String()
				if !strings.Contains(stderr, c.log) {
					t.Errorf("stderr lacks %q:\n%s", c.log, stderr)
				}
			}
		})
	}
}
