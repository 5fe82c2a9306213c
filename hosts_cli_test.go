package main

// The MCP hosts' own command-line interfaces read what 'm2m-ssh config
// --for' prints: Claude Code's 'claude mcp add', 'claude mcp add-json',
// 'claude mcp list' and 'claude mcp get', Gemini CLI's 'gemini mcp list'
// and Codex's 'codex mcp list --json', each with HOME in a folder of the
// test's. They are found in M2M_HOSTS_DIR, a folder where
// @anthropic-ai/claude-code, @google/gemini-cli and @openai/codex are
// installed (.ci/run installs them there); without it the tests skip,
// except under CI=true, where they fail. None of these subcommands needs
// a login.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// hostCLIBound bounds one run of a host's CLI: Node starts slowly on a
// loaded machine, and 'mcp list' starts and initializes each server.
const hostCLIBound = 2 * time.Minute

// hostCLI is the path of a host's CLI in M2M_HOSTS_DIR.
func hostCLI(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("M2M_HOSTS_DIR")
	if dir == "" {
		if sshtest.InCI() {
			t.Fatal("M2M_HOSTS_DIR is not set; .ci/run installs the hosts' CLIs there")
		}
		t.Skip("M2M_HOSTS_DIR is not set (a folder where @anthropic-ai/claude-code, @google/gemini-cli and @openai/codex are installed)")
	}
	p := filepath.Join(dir, "node_modules", ".bin", name)
	if _, err := os.Stat(p); err != nil {
		if sshtest.InCI() {
			t.Fatalf("%s is not installed in M2M_HOSTS_DIR: %v", name, err)
		}
		t.Skipf("%s is not installed in M2M_HOSTS_DIR", name)
	}
	return p
}

// hostsWorld is a real sshd with the test MCP server behind it, a real
// m2m-ssh binary (the hosts start it by its path, with an environment of
// their own), and a HOME for the hosts' settings.
type hostsWorld struct {
	*world
	m2m  string
	home string
}

func newHostsWorld(t *testing.T) *hostsWorld {
	t.Helper()
	w := newWorld(t)
	bin, err := sshtest.Build(t.TempDir(), ".", "m2m-ssh")
	if err != nil {
		t.Fatal(err)
	}
	return &hostsWorld{world: w, m2m: bin, home: t.TempDir()}
}

// config is 'm2m-ssh config' run as a user does, with the agent.
func (w *hostsWorld) config(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(w.m2m, append([]string{"config", "-F", w.world.config}, args...)...)
	cmd.Env = []string{"HOME=" + w.home, "PATH=" + os.Getenv("PATH"), "SSH_AUTH_SOCK=" + w.agent.Sock}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("m2m-ssh config %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// run runs a host's CLI (or sh) in the world's HOME, within hostCLIBound,
// with what each host offers to stay off the network.
func (w *hostsWorld) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = w.home
	cmd.Env = append(os.Environ(), "HOME="+w.home, "SSH_AUTH_SOCK="+w.agent.Sock,
		"CODEX_HOME="+filepath.Join(w.home, ".codex"),
		"DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"NO_UPDATE_NOTIFIER=1", "GEMINI_CLI_NO_RELAUNCH=true")
	var out sshtest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
		}
	case <-time.After(hostCLIBound):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s still running after %s:\n%s", filepath.Base(name), strings.Join(args, " "), hostCLIBound, out.String())
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out.String())
	return out.String()
}

// TestClaudeCodeReadsConfig pastes config --for claude-code's command
// line into a shell, as a user does, and has Claude Code start and list
// the server; then adds the JSON form of an unreachable host with 'claude
// mcp add-json' and checks that Claude Code shows m2m-ssh's error.
func TestClaudeCodeReadsConfig(t *testing.T) {
	claude := hostCLI(t, "claude")
	w := newHostsWorld(t)
	out := w.config(t, "--for", "claude-code", "buildbox", "--", bins.testmcp)
	addLine, rest, _ := strings.Cut(out, "\n# or, the same server as JSON:\n")
	// claude on the shell's PATH is the one under test.
	w.run(t, "sh", "-c", "PATH="+filepath.Dir(claude)+":$PATH; "+addLine)
	if list := w.run(t, claude, "mcp", "list"); !regexp.MustCompile(`(?m)^buildbox: .*m2m-ssh -F \S+ buildbox -- \S+testmcp - [✓✔] Connected$`).MatchString(list) {
		t.Errorf("claude mcp list does not show buildbox connected:\n%s", list)
	}

	broken := w.config(t, "--for", "claude-code", "--port", fmt.Sprint(sshtest.FreePort(t)), "buildbox")
	m := regexp.MustCompile(`(?m)^# claude mcp add-json buildbox '(.*)'$`).FindStringSubmatch(broken)
	if m == nil {
		t.Fatalf("no add-json line in:\n%s%s", broken, rest)
	}
	w.run(t, claude, "mcp", "add-json", "unreachable", m[1])
	get := w.run(t, claude, "mcp", "get", "unreachable")
	if !strings.Contains(get, "-32000: m2m-ssh: cannot connect to") || !strings.Contains(get, "Connection refused (hint: nothing listens at 127.0.0.1:") {
		t.Errorf("claude mcp get does not show m2m-ssh's error:\n%s", get)
	}
}

// TestGeminiReadsConfig puts config --for gemini's JSON in Gemini CLI's
// settings.json and has it start and list the server.
func TestGeminiReadsConfig(t *testing.T) {
	gemini := hostCLI(t, "gemini")
	w := newHostsWorld(t)
	dir := filepath.Join(w.home, ".gemini")
	writeFile(t, filepath.Join(dir, "settings.json"), w.config(t, "--for", "gemini", "buildbox", "--", bins.testmcp))
	// Gemini CLI starts no server from a folder it does not trust.
	trusted, _ := json.Marshal(map[string]string{w.home: "TRUST_FOLDER"})
	writeFile(t, filepath.Join(dir, "trustedFolders.json"), string(trusted))
	if list := w.run(t, gemini, "mcp", "list"); !regexp.MustCompile(`(?m)buildbox: \S+m2m-ssh -F \S+ buildbox -- \S+testmcp \(stdio\) - Connected$`).MatchString(list) {
		t.Errorf("gemini mcp list does not show buildbox connected:\n%s", list)
	}
}

// TestCodexReadsConfig puts config --for codex's table in Codex's
// config.toml and checks what 'codex mcp list --json' read from it.
func TestCodexReadsConfig(t *testing.T) {
	codex := hostCLI(t, "codex")
	w := newHostsWorld(t)
	odd := sshtest.WriteFile(t, w.home, `it's "odd" \ here.conf`, "Host buildbox", "  HostName 127.0.0.1")
	writeFile(t, filepath.Join(w.home, ".codex", "config.toml"), w.config(t, "--for", "codex", "-F", odd, "buildbox", "--", bins.testmcp, "--flag=a b"))
	var list []struct {
		Name      string
		Enabled   bool
		Transport struct {
			Type    string
			Command string
			Args    []string
			Env     map[string]string
		}
	}
	out := w.run(t, codex, "mcp", "list", "--json")
	if err := json.Unmarshal([]byte(out[strings.IndexByte(out, '['):]), &list); err != nil {
		t.Fatalf("codex mcp list --json: %v\n%s", err, out)
	}
	if len(list) != 1 {
		t.Fatalf("codex lists %d servers, want 1:\n%s", len(list), out)
	}
	s := list[0]
	want := []string{"-F", odd, "buildbox", "--", bins.testmcp, "--flag=a b"}
	if s.Name != "buildbox" || !s.Enabled || s.Transport.Type != "stdio" || s.Transport.Command != w.m2m ||
		strings.Join(s.Transport.Args, "\x00") != strings.Join(want, "\x00") || s.Transport.Env["SSH_AUTH_SOCK"] != w.agent.Sock {
		t.Errorf("codex read %+v; want buildbox, %s %q, SSH_AUTH_SOCK %s", s, w.m2m, want, w.agent.Sock)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInspectorShowsErrors runs the MCP Inspector's command-line mode, as
// the README shows it, on a host that refuses the connection and on a
// mistyped flag: the Inspector prints m2m-ssh's error, hint included.
func TestInspectorShowsErrors(t *testing.T) {
	dir := os.Getenv("M2M_INSPECTOR_DIR")
	if dir == "" {
		if sshtest.InCI() {
			t.Fatal("M2M_INSPECTOR_DIR is not set; .ci/run installs @modelcontextprotocol/inspector there")
		}
		t.Skip("M2M_INSPECTOR_DIR is not set (a folder where @modelcontextprotocol/inspector is installed)")
	}
	npx := sshtest.LookPath(t, "npx")
	bin, err := sshtest.Build(t.TempDir(), ".", "m2m-ssh")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sshtest.WriteFile(t, t.TempDir(), "ssh_config", "Host buildbox", "  HostName 127.0.0.1", fmt.Sprintf("  Port %d", sshtest.FreePort(t)), "  IdentityAgent none")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-F", cfg, "buildbox"}, `"message":"m2m-ssh: cannot connect to buildbox (127.0.0.1:`},
		{[]string{"-F", cfg, "buildbox", "--log-levl", "DEBUG"}, `"message":"m2m-ssh: unknown flag --log-levl (hint: did you mean --log-level?)"`},
	} {
		cmd := exec.Command(npx, append(append([]string{"--no-install", "@modelcontextprotocol/inspector", "--cli", bin}, c.args...), "--method", "tools/list")...)
		cmd.Dir = dir
		var out sshtest.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := sshtest.Within(t, hostCLIBound, cmd.Run); err == nil {
			t.Errorf("the Inspector succeeded on %q:\n%s", c.args, out.String())
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("the Inspector on %q does not show %s:\n%s", c.args, c.want, out.String())
		}
		t.Logf("inspector --cli m2m-ssh %s --method tools/list:\n%s", strings.Join(c.args, " "), out.String())
	}
}
