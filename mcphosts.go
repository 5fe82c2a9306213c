package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// stdioServer is what every MCP host is told: how to start m2m-ssh.
type stdioServer struct {
	Command string
	Args    []string
	Env     map[string]string
}

// mcpHost is an MCP host that config writes for, and how its
// configuration spells a stdio server.
type mcpHost struct {
	name  string // --for's value
	write func(w io.Writer, name string, s stdioServer) error
}

// mcpHosts are the hosts config knows. A new host is a row here, and a
// test that parses its output as the host does (mcphosts_test.go).
var mcpHosts = []mcpHost{
	{"claude", jsonServers("mcpServers", "")},   // Claude Desktop: claude_desktop_config.json
	{"claude-code", writeClaudeCode},            // Claude Code: claude mcp add, claude mcp add-json
	{"cursor", jsonServers("mcpServers", "")},   // ~/.cursor/mcp.json or .cursor/mcp.json
	{"vscode", jsonServers("servers", "stdio")}, // .vscode/mcp.json
	{"gemini", jsonServers("mcpServers", "")},   // ~/.gemini/settings.json
	{"codex", writeCodex},                       // ~/.codex/config.toml
}

func mcpHostNames() []string {
	names := make([]string, len(mcpHosts))
	for i, h := range mcpHosts {
		names[i] = h.name
	}
	return names
}

func findMCPHost(name string) (mcpHost, bool) {
	for _, h := range mcpHosts {
		if strings.EqualFold(h.name, name) {
			return h, true
		}
	}
	return mcpHost{}, false
}

// serverName is the alias as a server's name: Claude Code and Codex take
// letters, digits, - and _ only, and one name in every host is the least
// surprise.
func serverName(alias string) string {
	b := []byte(alias)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "m2m-ssh"
	}
	return string(b)
}

// jsonServer is one stdio server in the JSON the hosts read, in the
// order their documentation writes it.
type jsonServer struct {
	Type    string            `json:"type,omitempty"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env,omitempty"`
}

func (s stdioServer) json(typ string) jsonServer {
	args := s.Args
	if args == nil {
		args = []string{}
	}
	return jsonServer{Type: typ, Command: s.Command, Args: args, Env: s.Env}
}

// jsonServers writes {"KEY": {NAME: server}}, the shape of Claude
// Desktop's, Cursor's, VS Code's and Gemini CLI's files; typ is the
// server's "type" where the host wants one.
func jsonServers(key, typ string) func(io.Writer, string, stdioServer) error {
	return func(w io.Writer, name string, s stdioServer) error {
		out, err := json.MarshalIndent(map[string]map[string]jsonServer{key: {name: s.json(typ)}}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	}
}

// writeClaudeCode writes the 'claude mcp add' command line, then, as a
// comment, the same server as 'claude mcp add-json' takes it.
func writeClaudeCode(w io.Writer, name string, s stdioServer) error {
	// The name before --env: --env takes every word up to the next
	// option, the name included.
	line := []string{"claude", "mcp", "add", "--transport", "stdio", name}
	for _, k := range sortedKeys(s.Env) {
		line = append(line, "--env", k+"="+s.Env[k])
	}
	line = append(append(line, "--", s.Command), s.Args...)
	js, err := json.Marshal(s.json("stdio"))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n# or, the same server as JSON:\n# claude mcp add-json %s %s\n",
		shellLine(line), shellQuote(name), shellQuote(string(js)))
	return err
}

// writeCodex writes the server as a table of Codex's config.toml.
func writeCodex(w io.Writer, name string, s stdioServer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[mcp_servers.%s]\n", tomlKey(name))
	fmt.Fprintf(&b, "command = %s\n", tomlString(s.Command))
	quoted := make([]string, len(s.Args))
	for i, a := range s.Args {
		quoted[i] = tomlString(a)
	}
	fmt.Fprintf(&b, "args = [%s]\n", strings.Join(quoted, ", "))
	if len(s.Env) > 0 {
		var kv []string
		for _, k := range sortedKeys(s.Env) {
			kv = append(kv, tomlKey(k)+" = "+tomlString(s.Env[k]))
		}
		fmt.Fprintf(&b, "env = { %s }\n", strings.Join(kv, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tomlKey is k as a TOML key: bare when TOML allows it, else quoted.
func tomlKey(k string) string {
	if k != "" && serverName(k) == k {
		return k
	}
	return tomlString(k)
}

// tomlString is s as a TOML basic string. TOML's escapes are not Go's
// (no \x, \a or \v): control characters are written as \uXXXX, and bytes
// that are not UTF-8 as U+FFFD, which TOML's strings cannot hold otherwise.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, string(utf8.RuneError)) {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// shellLine is a command line a POSIX shell reads back as args.
func shellLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote is s as one word of a POSIX shell: as it is when nothing in
// it is special, else in single quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
