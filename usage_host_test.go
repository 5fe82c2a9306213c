//go:build unix

package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// usageBound bounds each bad command line's run, answer and exit: the
// answer waits for no connection, only for the host's quiet (FailGrace).
const usageBound = 30 * time.Second

// TestHostSeesUsageErrors starts m2m-ssh as an MCP host does (stdin and
// stdout pipes) with every kind of bad command line, and checks what the
// host receives: nothing but JSON-RPC frames on stdout, and each of its
// first requests answered with an error that names the problem, which is
// the line on stderr too; then the exit status. A usage error exits 2; a
// failure to reach the server, 255 as ssh's.
func TestHostSeesUsageErrors(t *testing.T) {
	dir := t.TempDir()
	config := sshtest.WriteFile(t, dir, "ssh_config", "Host buildbox", "  HostName 127.0.0.1", "  Port 1", "  IdentityAgent none")
	unshare, _ := exec.LookPath("unshare")
	cases := []struct {
		name   string
		args   []string
		netns  bool // run in a network namespace of its own: the name lookup fails there
		status int
		want   string
	}{
		{"typo'd flag", []string{"--log-levl", "DEBUG", "buildbox"}, false, 2, "unknown flag --log-levl (hint: did you mean --log-level?)"},
		{"bad log level", []string{"--log-level", "TRACE", "buildbox"}, false, 2, `unknown --log-level "TRACE"`},
		{"bad --max-frame", []string{"-F", config, "--max-frame", "lots", "buildbox"}, false, 2, `--max-frame "lots" is not a size`},
		{"--max-frame too small", []string{"-F", config, "buildbox", "--max-frame", "1"}, false, 2, `--max-frame "1" is under the smallest limit`},
		{"a flag of another subcommand", []string{"--for", "vscode", "buildbox"}, false, 2, "--for does not apply to a connection"},
		{"a flag of demo's", []string{"-F", config, "--walkthrough", "buildbox"}, false, 2, "--walkthrough does not apply to a connection"},
		{"a value missing", []string{"buildbox", "-F"}, false, 2, "-F needs a value"},
		{"a bool given a value", []string{"-A=maybe", "buildbox"}, false, 2, `-A takes no value`},
		{"no such config file", []string{"-F", "/nonexistent/ssh_config", "buildbox"}, false, 255, "cannot read config file /nonexistent/ssh_config"},
		{"a subcommand mistyped", []string{"-F", config, "docter", "bench"}, true, 255, "cannot resolve hostname docter: no Host block in " + config + " matches it (hint: did you mean 'm2m-ssh doctor bench'?)"},
		{"both ALIAS and --host", []string{"--host", "h", "buildbox"}, false, 2, `give either an ALIAS ("buildbox") or --host`},
		{"bad demo argument", []string{"demo", "extra"}, false, 2, "demo takes no arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cmd := m2mCommand([]string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}, c.args...)
			if c.netns {
				if unshare == "" {
					if os.Getenv("CI") == "true" {
						t.Fatal("unshare is not installed")
					}
					t.Skip("needs unshare for a network namespace")
				}
				cmd = exec.Command(unshare, append([]string{"-rn", cmd.Path}, c.args...)...)
				cmd.Env = m2mEnv("HOME="+dir, "PATH="+os.Getenv("PATH"))
			}
			start := time.Now()
			h := startRaw(t, cmd)
			h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
			h.send(`{"jsonrpc":"2.0","id":"two","method":"ping"}`)
			var said string
			for _, id := range []any{1.0, "two"} {
				m := h.recv(usageBound)
				e, _ := m["error"].(map[string]any)
				msg, _ := e["message"].(string)
				if m["jsonrpc"] != "2.0" || m["id"] != id || e == nil || e["code"] != -32000.0 {
					t.Fatalf("request %v answered with %v; want a JSON-RPC error -32000", id, m)
				}
				if !strings.HasPrefix(msg, "m2m-ssh: ") || !strings.Contains(msg, c.want) {
					t.Errorf("request %v: message %q; want it to contain %q", id, msg, c.want)
				}
				said = msg
			}
			h.in.Close()
			err := sshtest.Within(t, usageBound, func() error { return h.cmd.Wait() })
			var ee *exec.ExitError
			if status := 0; !errors.As(err, &ee) || ee.ExitCode() != c.status {
				if ee != nil {
					status = ee.ExitCode()
				}
				t.Errorf("exit %v (status %d), want %d", err, status, c.status)
			}
			// Whatever else came, it was a frame: recv fails on a line
			// that is not JSON.
			for m := range h.out {
				if m["corrupt"] != nil {
					t.Errorf("stdout carried a line that is not JSON-RPC: %q", m["corrupt"])
				}
			}
			if took := time.Since(start); took > usageBound {
				t.Errorf("took %s", took)
			}
			// The same words as the lines on stderr: "m2m-ssh: E (hint: H)"
			// is "m2m-ssh: error: E" and "m2m-ssh: hint: H".
			text, hint, _ := strings.Cut(strings.TrimPrefix(said, "m2m-ssh: "), " (hint: ")
			lines := "m2m-ssh: error: " + text + "\n"
			if hint != "" {
				lines += "m2m-ssh: hint: " + strings.TrimSuffix(hint, ")") + "\n"
			}
			if !strings.Contains(h.stderr.String(), lines) {
				t.Errorf("stderr does not say\n%s", lines)
			}
			if n := strings.Count(h.stderr.String(), "m2m-ssh: error: "); n != 1 {
				t.Errorf("stderr has %d error lines, want 1:\n%s", n, h.stderr)
			}
		})
	}
}

// TestHostSeesHelpOnStderr checks that --help given to a process an MCP
// host started writes nothing to stdout.
func TestHostSeesHelpOnStderr(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"buildbox", "-h"}, {"doctor", "--help"}} {
		cmd := m2mCommand(nil, args...)
		cmd.Stdin = strings.NewReader("")
		var stderr sshtest.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || len(out) != 0 || !strings.Contains(stderr.String(), "USAGE:") {
			t.Errorf("m2m-ssh %s: %v, stdout %q, stderr %d bytes; want the help on stderr only", strings.Join(args, " "), err, out, len(stderr.String()))
		}
	}
}
