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
	for _, c := range []struct {
		name       string
		shell      bool
		answered   bool // the remote answers the first request before its stderr speaks
		closeStdin bool
		noCommand  bool
	}{
		{"shell, stdin open", true, false, false, true},
		{"shell, stdin closed", true, false, true, true},
		{"a remote command", false, false, false, false},
		{"shell that answered", true, true, false, false},
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
			io.WriteString(remote.stderrW, shellErr)
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
