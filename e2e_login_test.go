package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// passwordWorld is a real sshd that wants a key and then a password
// ("AuthenticationMethods publickey,password") from the account .ci/run
// gives a password, with the test MCP server as its mcp subsystem.
type passwordWorld struct {
	dir, config, pass string
}

func newPasswordWorld(t *testing.T) *passwordWorld {
	t.Helper()
	return newLoginWorld(t, "PasswordAuthentication yes", "AuthenticationMethods publickey,password")
}

// newLoginWorld is passwordWorld with these sshd_config settings.
func newLoginWorld(t *testing.T, settings ...string) *passwordWorld {
	t.Helper()
	u, pass := sshtest.Password(t)
	w := &passwordWorld{dir: t.TempDir(), pass: pass}
	key := sshtest.Keygen(t, w.dir, "id_pass", sshtest.KeyOptions{})
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{key.Public},
		Subsystems:     map[string]string{"mcp": bins.testmcp},
		LoginUser:      u.Username,
		Settings:       settings,
	})
	kh := sshtest.WriteFile(t, w.dir, "known_hosts", sshd.KnownHosts()...)
	w.config = sshtest.WriteFile(t, w.dir, "ssh_config",
		"Host box box-*",
		"  HostName "+sshd.Host,
		fmt.Sprintf("  Port %d", sshd.Port),
		"  User "+u.Username,
		"  UserKnownHostsFile "+kh,
		"  StrictHostKeyChecking yes",
		"  IdentityAgent none",
		"  IdentityFile "+key.Path,
		"Host box-batch",
		"  BatchMode yes",
	)
	return w
}

// askpass writes an askpass program running script after it notes its
// prompt in dir/prompts.
func (w *passwordWorld) askpass(t *testing.T, name string, script ...string) (prog, prompts string) {
	t.Helper()
	prompts = filepath.Join(w.dir, name+".prompts")
	prog = sshtest.WriteFile(t, w.dir, name, append([]string{"#!/bin/sh", `printf '%s\n' "$1" >> ` + prompts}, script...)...)
	if err := os.Chmod(prog, 0o700); err != nil {
		t.Fatal(err)
	}
	return prog, prompts
}

// TestEndToEndPasswordLogin: m2m-ssh logs in with the key and then the
// password the askpass program gives, and the MCP session works; at
// DEBUG neither stderr nor the log file holds the password.
func TestEndToEndPasswordLogin(t *testing.T) {
	w := newPasswordWorld(t)
	prog, prompts := w.askpass(t, "askpass", "echo '"+w.pass+"'")
	logFile := filepath.Join(w.dir, "m2m.log")
	for _, tc := range []struct{ name, logTo string }{{"stderr", ""}, {"log file", logFile}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-F", w.config, "--log-level", "DEBUG"}
			if tc.logTo != "" {
				args = append(args, "--log-file", tc.logTo)
			}
			cmd := m2mCommand([]string{"HOME=" + w.dir, "PATH=/usr/bin:/bin", "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"},
				append(args, "--subsystem", "mcp", "box")...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := connect(t, ctx, cmd)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "env", Arguments: map[string]any{"name": "HOME"}}); err != nil {
				t.Fatalf("tools/call: %v", err)
			}
			s.Close()
			stderr := cmd.Stderr.(*sshtest.Buffer).String()
			logged, _ := os.ReadFile(logFile)
			if tc.logTo != "" && !strings.Contains(string(logged), "level=DEBUG") || tc.logTo == "" && !strings.Contains(stderr, "level=DEBUG") {
				t.Fatalf("no DEBUG lines logged: the test proves nothing\n%s", stderr)
			}
			for where, text := range map[string]string{"stderr": stderr, "the log file": string(logged)} {
				if strings.Contains(text, w.pass) {
					t.Errorf("%s holds the password", where)
				}
			}
		})
	}
	data, _ := os.ReadFile(prompts)
	if want := strings.Repeat(sshtest.PasswordUser+"@127.0.0.1's password: \n", 2); string(data) != want {
		t.Errorf("askpass was asked %q; want %q", data, want)
	}
}

// TestEndToEndPasswordRefusals: the host's first request is answered with
// the reason m2m-ssh could not log in, within bounds, and m2m-ssh exits:
// BatchMode without asking, a wrong password after NumberOfPasswordPrompts
// tries, and askpass programs that fail, flood or print nothing.
func TestEndToEndPasswordRefusals(t *testing.T) {
	w := newPasswordWorld(t)
	tests := []struct {
		name   string
		alias  string
		env    []string
		script []string
		want   string
		asked  int
	}{
		{name: "BatchMode", alias: "box-batch", script: []string{"echo '" + w.pass + "'"}, want: "the server accepts password", asked: 0},
		{name: "wrong password", alias: "box", script: []string{"echo wrong"}, want: "the password was refused (3 tries)", asked: 3},
		{name: "no display", alias: "box", env: []string{"SSH_ASKPASS_REQUIRE="}, script: []string{"echo '" + w.pass + "'"}, want: "the server accepts password", asked: 0},
		{name: "exits non-zero", alias: "box", script: []string{"echo '" + w.pass + "'", "exit 1"}, want: "exited with status 1", asked: 1},
		{name: "floods", alias: "box", script: []string{"exec yes " + w.pass}, want: "printed more than 1023 bytes", asked: 1},
		{name: "prints nothing", alias: "box", script: []string{"true"}, want: "printed no password", asked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, prompts := w.askpass(t, strings.ReplaceAll(tt.name, " ", "-"), tt.script...)
			env := append([]string{"HOME=" + w.dir, "PATH=/usr/bin:/bin", "SSH_ASKPASS=" + prog, "SSH_ASKPASS_REQUIRE=force"}, tt.env...)
			cmd := m2mCommand(env, "-F", w.config, "--log-level", "DEBUG", "--subsystem", "mcp", tt.alias)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			wantStartFailure(t, ctx, cmd, tt.want)
			if stderr := fmt.Sprint(cmd.Stderr); strings.Contains(stderr, w.pass) {
				t.Errorf("stderr holds the password:\n%s", stderr)
			}
			data, _ := os.ReadFile(prompts)
			if got := strings.Count(string(data), "\n"); got != tt.asked {
				t.Errorf("askpass was asked %d times; want %d", got, tt.asked)
			}
		})
	}
}

// TestEndToEndKeyboardInteractiveLogin: a key and then PAM's
// keyboard-interactive prompt, answered by the askpass program as ssh
// words it, and the MCP session works.
func TestEndToEndKeyboardInteractiveLogin(t *testing.T) {
	w := newLoginWorld(t, "UsePAM yes", "KbdInteractiveAuthentication yes", "AuthenticationMethods publickey,keyboard-interactive")
	prog, prompts := w.askpass(t, "askpass", "echo '"+w.pass+"'")
	cmd := m2mCommand([]string{"HOME=" + w.dir, "PATH=/usr/bin:/bin", "SSH_ASKPASS=" + prog, "DISPLAY=:0"},
		"-F", w.config, "--log-level", "DEBUG", "--subsystem", "mcp", "box")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := connect(t, ctx, cmd)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "env", Arguments: map[string]any{"name": "HOME"}}); err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	s.Close()
	data, _ := os.ReadFile(prompts)
	if want := "(" + sshtest.PasswordUser + "@127.0.0.1) Password: \n"; string(data) != want {
		t.Errorf("askpass was asked %q; want %q", data, want)
	}
	if strings.Contains(cmd.Stderr.(*sshtest.Buffer).String(), w.pass) {
		t.Error("stderr holds the password")
	}
}
