package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// Each host's configuration is read here as that host reads it: JSON for
// Claude Desktop, Cursor, VS Code, Gemini CLI and 'claude mcp add-json';
// TOML for Codex, with github.com/BurntSushi/toml, a strict TOML 1.0
// decoder (it refuses the escapes and bare keys TOML does not have, which
// a lenient reader would let pass), used by the tests only; the 'claude
// mcp add' line by a POSIX shell, as a user pastes it. The CLIs
// themselves read the same outputs in hosts_cli_test.go.

// configServer is a stdio server as the hosts' files spell it.
type configServer struct {
	Type    string            `json:"type" toml:"type"`
	Command string            `json:"command" toml:"command"`
	Args    []string          `json:"args" toml:"args"`
	Env     map[string]string `json:"env" toml:"env"`
}

// hostile paths and words: quotes of both kinds, a backslash, a space, a
// dollar, a newline, a tab, non-ASCII.
const hostileDir = "it's \"odd\" \\ $HOME\tdir\nτ"

func TestConfigForEachHost(t *testing.T) {
	dir := filepath.Join(t.TempDir(), hostileDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host build.box\n  HostName 10.0.0.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "/run/agent's.sock")
	t.Setenv("M2M_SSH_INSTALLER", "")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"-F", cfg, "build.box", "--", "server", "--name=a 'b'", `c"d\e`}
	for _, c := range []struct {
		host  string
		parse func(t *testing.T, out string) (name string, s configServer)
		typ   string
	}{
		{"claude", jsonUnder("mcpServers"), ""},
		{"cursor", jsonUnder("mcpServers"), ""},
		{"vscode", jsonUnder("servers"), "stdio"},
		{"gemini", jsonUnder("mcpServers"), ""},
		{"codex", codexTOML, ""},
		{"claude-code", claudeAddLine, "stdio"},
		{"claude-code", claudeAddJSON, "stdio"},
	} {
		t.Run(c.host, func(t *testing.T) {
			// --for after ALIAS as well as before it.
			for _, args := range [][]string{
				{"config", "--for", c.host, "-F", cfg, "build.box", "--", "server", "--name=a 'b'", `c"d\e`},
				{"config", "-F", cfg, "build.box", "--for", c.host, "--", "server", "--name=a 'b'", `c"d\e`},
			} {
				code, out, errs := runCLI(args...)
				if code != 0 {
					t.Fatalf("config: exit %d\n%s", code, errs)
				}
				name, s := c.parse(t, out)
				if name != "build-box" {
					t.Errorf("server name %q, want build-box", name)
				}
				if s.Type != c.typ || s.Command != self || strings.Join(s.Args, "\x00") != strings.Join(wantArgs, "\x00") || s.Env["SSH_AUTH_SOCK"] != "/run/agent's.sock" {
					t.Errorf("the host reads %+v; want type %q, command %s, args %q and SSH_AUTH_SOCK", s, c.typ, self, wantArgs)
				}
			}
		})
	}
}

// jsonUnder reads {KEY: {NAME: server}}, refusing what the hosts do not
// know.
func jsonUnder(key string) func(t *testing.T, out string) (string, configServer) {
	return func(t *testing.T, out string) (string, configServer) {
		t.Helper()
		var doc map[string]map[string]configServer
		d := json.NewDecoder(strings.NewReader(out))
		d.DisallowUnknownFields()
		if err := d.Decode(&doc); err != nil {
			t.Fatalf("not the JSON the host reads: %v\n%s", err, out)
		}
		return only(t, doc[key], out)
	}
}

func only(t *testing.T, m map[string]configServer, out string) (string, configServer) {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("%d servers, want 1:\n%s", len(m), out)
	}
	for n, s := range m {
		return n, s
	}
	panic("unreachable")
}

// codexTOML reads Codex's [mcp_servers.NAME] table.
func codexTOML(t *testing.T, out string) (string, configServer) {
	t.Helper()
	var doc struct {
		Servers map[string]configServer `toml:"mcp_servers"`
	}
	md, err := toml.Decode(out, &doc)
	if err != nil {
		t.Fatalf("not TOML: %v\n%s", err, out)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("keys Codex does not know: %v\n%s", u, out)
	}
	return only(t, doc.Servers, out)
}

// claudeAddLine has a POSIX shell read the 'claude mcp add' line, with a
// claude that prints its arguments, and reads them as Claude Code does:
// mcp add --transport stdio NAME --env K=V... -- COMMAND ARGS...
func claudeAddLine(t *testing.T, out string) (string, configServer) {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n# or, the same server as JSON:\n")
	argv := shellWords(t, line)
	if len(argv) < 6 || strings.Join(argv[:5], " ") != "claude mcp add --transport stdio" {
		t.Fatalf("not a claude mcp add line: %q", argv)
	}
	name, s := argv[5], configServer{Type: "stdio", Env: map[string]string{}}
	rest := argv[6:]
	for len(rest) > 1 && rest[0] == "--env" {
		k, v, _ := strings.Cut(rest[1], "=")
		s.Env[k] = v
		rest = rest[2:]
	}
	if len(rest) < 2 || rest[0] != "--" {
		t.Fatalf("no -- COMMAND in %q", argv)
	}
	s.Command, s.Args = rest[1], rest[2:]
	return name, s
}

// claudeAddJSON reads the commented 'claude mcp add-json NAME JSON' line
// through the shell, and its JSON as add-json does.
func claudeAddJSON(t *testing.T, out string) (string, configServer) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^# (claude mcp add-json .*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no add-json line:\n%s", out)
	}
	argv := shellWords(t, m[1])
	if len(argv) != 5 {
		t.Fatalf("add-json line is %d words, want 5: %q", len(argv), argv)
	}
	var s configServer
	d := json.NewDecoder(strings.NewReader(argv[4]))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, argv[4])
	}
	return argv[3], s
}

// shellWords is what sh makes of line: the words of the command it runs.
func shellWords(t testing.TB, line string) []string {
	t.Helper()
	cmd := exec.Command("sh", "-c", `claude() { printf '%s\0' claude "$@"; }; `+line)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh: %v on %q", err, line)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// FuzzHostWriters checks that every host's writer says exactly the
// command and arguments it was given, as that host reads them back.
func FuzzHostWriters(f *testing.F) {
	f.Add("/usr/bin/m2m-ssh", "-F", "it's \"odd\"\n\\", "box")
	f.Add("m", "\x00\x7f\u2028", "$(rm -rf /)", "\xff")
	f.Fuzz(func(t *testing.T, command, a, b, name string) {
		if strings.ContainsRune(command+a+b, 0) || !validUTF8(command+a+b) {
			// No argv holds a NUL, and file names that are not UTF-8
			// cannot be written in JSON or TOML.
			return
		}
		s := stdioServer{Command: command, Args: []string{a, b}, Env: map[string]string{"SSH_AUTH_SOCK": a}}
		for _, h := range mcpHosts {
			var out bytes.Buffer
			if err := h.write(&out, serverName(name), s); err != nil {
				t.Fatal(err)
			}
			var gotName string
			var got configServer
			switch h.name {
			case "codex":
				gotName, got = codexTOML(t, out.String())
			case "claude-code":
				gotName, got = claudeAddJSON(t, out.String())
				n2, s2 := claudeAddLine(t, out.String())
				if n2 != gotName || s2.Command != got.Command || strings.Join(s2.Args, "\x00") != strings.Join(got.Args, "\x00") {
					t.Fatalf("claude mcp add says %q %+v, add-json %q %+v", n2, s2, gotName, got)
				}
			case "vscode":
				gotName, got = jsonUnder("servers")(t, out.String())
			default:
				gotName, got = jsonUnder("mcpServers")(t, out.String())
			}
			if gotName != serverName(name) || got.Command != command || strings.Join(got.Args, "\x00") != a+"\x00"+b || got.Env["SSH_AUTH_SOCK"] != a {
				t.Fatalf("%s reads %q %+v; want %q %q %q", h.name, gotName, got, command, a, b)
			}
		}
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }
