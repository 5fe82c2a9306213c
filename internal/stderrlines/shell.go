package stderrlines

import (
	"bytes"
	"errors"
)

// ErrNoCommand is a login shell started where an MCP server was meant: no
// remote command was given and the config sets no RemoteCommand, so the
// shell reads the JSON-RPC lines as commands and says so on its stderr.
var ErrNoCommand = errors.New("no remote command was given: pass `-- COMMAND` or set RemoteCommand")

// shellErrors are what shells print for a line they cannot run: bash's and
// zsh's "command not found", dash's "not found", a syntax error.
var shellErrors = [][]byte{[]byte("command not found"), []byte(": not found"), []byte("syntax error")}

// ShellError reports whether text, from the stderr of a login shell, is the
// shell's complaint about a line it cannot run.
func ShellError(text []byte) bool {
	for _, e := range shellErrors {
		if bytes.Contains(text, e) {
			return true
		}
	}
	return false
}
