package bridge

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
)

// A login shell started where an MCP server was meant says so on its
// stderr; the host hears why, once for each request, whether it keeps
// stdin open (the shell would wait for more lines for ever) or closes it.
// A shell's error from a program that is not the login shell, or after the
// remote has answered, ends nothing.
func TestLoginShellAnswersNoCommand(t *testing.T) {
	const shellErr = `bash: line 1: jsonrpc:2.0: command not found` + "\n"
	// A forced command's complaint: no JSON-RPC in it.
	const toolErr = `/srv/mcp/start: line 3: nvm: command not found` + "\n"
	for _, c := range []struct {
		name       string
		shell      bool
		answered   bool // the remote answers the first request before its stderr speaks
		closeStdin bool
		stderr     string
		noCommand  bool
	}{
		{"shell, stdin open", true, false, false, shellErr, true},
		{"shell, stdin closed", true, false, true, shellErr, true},
		{"a remote command", false, false, false, shellErr, false},
		{"shell that answered", true, true, false, shellErr, false},
		{"forced command that complains, then answers", true, false, false, toolErr, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, remote, in := startPlayed(t, func(b *Bridge) { b.LoginShell = func() bool { return c.shell }; b.FailGrace = bound })
			h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
			recvLine(t, in)
			if c.answered {
				fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":1,"result":{}}`)
				if m := h.recv(); m["result"] == nil {
					t.Fatalf("the answer did not reach the host: %v", m)
				}
			}
			h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			recvLine(t, in)
			io.WriteString(remote.stderrW, c.stderr)
			if c.closeStdin {
				h.in.Close()
			}
			if !c.noCommand {
				// The session goes on: the remote still answers.
				fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":2,"result":{}}`)
				if m := h.recv(); m["id"] != 2.0 || m["result"] == nil {
					t.Fatalf("the session ended on a shell's error it should ignore: %v", m)
				}
				return
			}
			for range 2 {
				m := h.recv()
				e, _ := m["error"].(map[string]any)
				msg, _ := e["message"].(string)
				if e["code"] != float64(CodeUnavailable) || !strings.Contains(msg, stderrlines.ErrNoCommand.Error()) || !strings.Contains(msg, "(hint: the login shell on fake read the JSON-RPC lines as commands") {
					t.Fatalf("the host got %v, want the missing command named", m)
				}
			}
			if !c.closeStdin {
				// Later requests are refused the same way, not sent.
				h.send(`{"jsonrpc":"2.0","id":3,"method":"ping"}`)
				if m := h.recv(); m["id"] != 3.0 || m["error"] == nil {
					t.Fatalf("a later request got %v", m)
				}
				h.in.Close()
			}
			res := h.wait()
			var nc *NoCommandError
			if !errors.As(res.err, &nc) || !errors.Is(res.err, stderrlines.ErrNoCommand) {
				t.Fatalf("Run returned %d, %v; want a NoCommandError", res.code, res.err)
			}
		})
	}
}

// A login shell's error that quotes no frame (a forced command's start-up
// complaining of a missing tool) does not end the session; when the
// program then ends without a word on stdout, the host hears of the missing
// command rather than of a lost connection.
func TestLoginShellEndsAfterError(t *testing.T) {
	h, remote, in := startPlayed(t, func(b *Bridge) { b.LoginShell = func() bool { return true }; b.FailGrace = bound })
	h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`)
	recvLine(t, in)
	io.WriteString(remote.stderrW, "sh: 1: syntax error: \"(\" unexpected\n")
	remote.end(nil)
	m := h.recv()
	e, _ := m["error"].(map[string]any)
	if msg, _ := e["message"].(string); m["id"] != 1.0 || !strings.Contains(msg, stderrlines.ErrNoCommand.Error()) {
		t.Fatalf("the host got %v, want the missing command named", m)
	}
	h.in.Close()
	if res := h.wait(); !errors.Is(res.err, stderrlines.ErrNoCommand) {
		t.Fatalf("Run returned %d, %v", res.code, res.err)
	}
}
