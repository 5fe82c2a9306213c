//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/master"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A master takes the relative paths of the m2m-ssh that started it (here
// -F and ControlPath) as that m2m-ssh does, from its working directory,
// though the master itself moves to /: it shares the connection, instead
// of failing to read the config in / and failing the session with it.
func TestMasterRelativePaths(t *testing.T) {
	s := newSharing(t, "60")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	// In ControlPath's directory, -F and ControlPath relative to it (-o
	// comes before the config's ControlPath, so it wins).
	config, err := filepath.Rel(s.dir, s.w.config)
	if err != nil {
		t.Fatal(err)
	}
	cmd := s.command(t, "-o", "ControlPath=cm")
	for i, a := range cmd.Args {
		if a == s.w.config {
			cmd.Args[i] = config
		}
	}
	cmd.Dir = s.dir
	stderr := &sshtest.Buffer{}
	cmd.Stderr = stderr
	cs, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "relative"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "relative" {
		t.Fatalf("echo: %v %v", res, err)
	}
	pid := s.masterPID(t) // at ControlPath's directory's cm
	// Once it has dialled, it holds no directory of the host's.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd != "/" {
		t.Errorf("the master's working directory is %s, not /", cwd)
	}
	// The log is named by ControlPath as written.
	b, _ := os.ReadFile(master.LogPath(filepath.Join(s.w.dir, ".local", "state", "m2m-ssh"), "cm"))
	if log := string(b); !strings.Contains(log, "serving the shared connection") {
		t.Errorf("no master served the session; its log:\n%s\nm2m-ssh's stderr:\n%s", log, stderr)
	}
	if strings.Contains(stderr.String(), "level=WARN") {
		t.Errorf("m2m-ssh warned:\n%s", stderr)
	}
	cs.Close()
	cs.Wait()
}

// Without a state directory for the master's log (HOME unset, as under
// env -i or a bare service), the session does not share the connection
// but still connects, with a warning saying why: the missing directory
// is sharing's failure, not the session's.
func TestMasterNoStateDir(t *testing.T) {
	s := newSharing(t, "60")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	cmd := s.command(t)
	var env []string
	for _, kv := range cmd.Env {
		if !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stderr := &sshtest.Buffer{}
	cmd.Stderr = stderr
	cs, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "direct"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "direct" {
		t.Fatalf("echo: %v %v", res, err)
	}
	cs.Close()
	if log := stderr.String(); !strings.Contains(log, "cannot start a master to share the connection; connecting directly") || !strings.Contains(log, "$HOME is not defined") {
		t.Errorf("the log does not say why the connection is not shared:\n%s", log)
	}
}
