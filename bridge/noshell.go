package bridge

import (
	"bytes"
	"fmt"

	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
)

// NoCommandError ends a session whose first program was the user's login
// shell and whose stderr, before the remote said anything on stdout,
// showed the shell's error for a JSON-RPC line: nothing will ever answer,
// so the host hears why at once instead of waiting.
type NoCommandError struct {
	Alias string
}

func (e *NoCommandError) Error() string { return stderrlines.ErrNoCommand.Error() }
func (e *NoCommandError) Unwrap() error { return stderrlines.ErrNoCommand }

// Hint says what to give instead of the shell.
func (e *NoCommandError) Hint() string {
	return fmt.Sprintf("the login shell on %s read the JSON-RPC lines as commands: give the MCP server's command (m2m-ssh %s -- /path/to/mcp-server), or set RemoteCommand for %s", e.Alias, e.Alias, e.Alias)
}

// Permanent: the same command line starts the same shell.
func (e *NoCommandError) Permanent() bool { return true }

// watchShell is called with each line of a link's stderr. When the
// program is the login shell, the link is the session's first and the
// remote has said nothing on stdout, a shell's error marks the link: if
// the session ends, it ends with NoCommandError. When the line also quotes
// a JSON-RPC frame, the shell has read the host's frame as a command and
// will wait for more for ever: the link is closed at once. A forced
// command (command= in authorized_keys) that complains of a missing tool
// before it answers only marks the link, and goes on.
func (l *link) watchShell(text []byte) {
	if !l.shell || l.heard.Load() || !stderrlines.ShellError(text) {
		return
	}
	l.noCommand.Store(true)
	if bytes.Contains(text, []byte("jsonrpc")) && l.closing.CompareAndSwap(false, true) {
		l.remote.Close()
	}
}
