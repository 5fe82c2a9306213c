package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/ssh"
)

// seedWorld is a stand-in for m2m-mcp-server-ssh-server with the test MCP
// server behind it, and a fresh home directory for m2m-ssh, started the
// way Claude Desktop starts the Python client.
type seedWorld struct {
	srv  *sshtest.PyServer
	home string
	cwd  string // the working directory, where a literal ~ would appear
}

func newSeedWorld(t *testing.T, cfg sshtest.PyServerConfig) *seedWorld {
	t.Helper()
	cfg.MCP = bins.testmcp
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 1000
	}
	return &seedWorld{srv: sshtest.StartPyServer(t, cfg), home: t.TempDir(), cwd: t.TempDir()}
}

// args are the Python client's arguments for the server, then extra.
func (w *seedWorld) args(extra ...string) []string {
	return append([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(w.srv.Port),
		"--use-key-server", "--key-server-port", strconv.Itoa(w.srv.KeyServerPort)}, extra...)
}

func (w *seedWorld) command(args ...string) *exec.Cmd {
	cmd := m2mCommand([]string{"HOME=" + w.home, "PATH=/usr/bin:/bin"}, args...)
	cmd.Dir = w.cwd
	return cmd
}

func (w *seedWorld) pinFile() string {
	return filepath.Join(w.home, ".config", "m2m-ssh", "known_hosts")
}

// callEcho checks a session end to end: tools listed, and a text with
// every line separator Python splits at carried both ways.
func callEcho(t *testing.T, ctx context.Context, s *mcp.ClientSession) {
	t.Helper()
	if got := s.InitializeResult().ServerInfo.Name; got != "testmcp" {
		t.Fatalf("server name = %q", got)
	}
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if len(tools.Tools) < 5 {
		t.Fatalf("tools/list returned %d tools", len(tools.Tools))
	}
	text := "a \u2028 b \u2029 c \u0085 d \r e ✓"
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatalf("tools/call echo: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != text {
		t.Fatalf("echo = %q, want %q", got, text)
	}
}

func TestKeyServerEndToEnd(t *testing.T) {
	w := newSeedWorld(t, sshtest.PyServerConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("first run generates, registers, pins and connects", func(t *testing.T) {
		s, err := connect(t, ctx, w.command(w.args()...))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		callEcho(t, ctx, s)
		s.Close()

		key := filepath.Join(w.home, ".ssh", "m2m_mcp_server_ssh_client")
		for file, mode := range map[string]os.FileMode{key: 0o600, key + ".pub": 0o644} {
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != mode {
				t.Errorf("%s: mode %v, want %v", file, st.Mode().Perm(), mode)
			}
		}
		for _, dir := range []string{w.cwd, w.home} {
			if _, err := os.Stat(filepath.Join(dir, "~")); err == nil {
				t.Errorf("a directory named ~ appeared in %s", dir)
			}
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		if got := w.srv.Registered(); len(got) != 1 || got[0] != strings.TrimSpace(string(pub)) || strings.Count(got[0], " ") != 1 {
			t.Errorf("registered %q, want the .pub %q without a comment", got, pub)
		}
		pinned, err := os.ReadFile(w.pinFile())
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("[127.0.0.1]:%d %s", w.srv.Port, ssh.MarshalAuthorizedKey(w.srv.HostKey()))
		if string(pinned) != want {
			t.Errorf("pinned %q, want %q", pinned, want)
		}
		if bad := w.srv.BadLines(); len(bad) != 0 {
			t.Errorf("the server cut frames: %q", bad)
		}
	})

	t.Run("raw line separators and CRLF from the host", func(t *testing.T) {
		rawFrames(t, w, w.command(w.args()...))
	})

	t.Run("a swapped server key is refused", func(t *testing.T) {
		w.srv.RotateHostKey()
		cmd := w.command(w.args()...)
		_, err := connect(t, ctx, cmd)
		if err == nil {
			t.Fatal("connected with a swapped server key")
		}
		stderr := fmt.Sprint(cmd.Stderr)
		if !strings.Contains(err.Error(), "Host key verification failed") || !strings.Contains(stderr, "m2m-ssh: error: Host key verification failed") {
			t.Fatalf("the host saw %q; stderr:\n%s", err, stderr)
		}
		// The hint's command accepts a legitimate rotation.
		m := regexp.MustCompile(`m2m-ssh: hint: .*'(ssh-keygen -R "\[127\.0\.0\.1\]:\d+" -f [^']+)'`).FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no rotation hint in:\n%s", stderr)
		}
		sshtest.LookPath(t, "ssh-keygen")
		sshtest.Run(t, "sh", "-c", "PATH=/usr/bin:/bin "+m[1])
		s, err := connect(t, ctx, w.command(w.args()...))
		if err != nil {
			t.Fatalf("connect after accepting the rotation: %v", err)
		}
		callEcho(t, ctx, s)
		s.Close()
		pinned, _ := os.ReadFile(w.pinFile())
		if !strings.Contains(string(pinned), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(w.srv.HostKey())))) {
			t.Errorf("the new key is not pinned:\n%s", pinned)
		}
	})
}

// rawFrames writes frames as a host could: raw U+2028, U+2029 and U+0085
// inside strings, a bare CR between tokens and CRLF line ends. The server splits its input at all
// of them, so m2m-ssh must escape them for the frames to arrive whole.
func rawFrames(t *testing.T, w *seedWorld, cmd *exec.Cmd) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	text := "x\u2028y\u2029z\u0085w"
	frames := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		// A bare CR between tokens is valid JSON whitespace, and a line
		// break to the server.
		"{\"jsonrpc\":\"2.0\",\r\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"" + text + "\"}}}",
	}
	if _, err := io.WriteString(stdin, strings.Join(frames, "\r\n")+"\r\n"); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("m2m-ssh ended before answering; stderr:\n%s", stderr.String())
			}
			var m struct {
				ID     int `json:"id"`
				Result struct {
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("m2m-ssh wrote %q: %v", l, err)
			}
			if m.ID != 2 {
				continue
			}
			if len(m.Result.Content) != 1 || m.Result.Content[0].Text != text {
				t.Fatalf("echo answered %q", l)
			}
			if !strings.Contains(l, "\u2028") {
				t.Errorf("the answer %q lost its raw U+2028 on the way", l)
			}
			if bad := w.srv.BadLines(); len(bad) != 0 {
				t.Fatalf("the server cut frames: %q", bad)
			}
			return
		case <-timeout:
			t.Fatalf("no answer to the echo; the server saw lines %q; stderr:\n%s", w.srv.Lines(), stderr.String())
		}
	}
}

// The key server over HTTPS with a certificate of a private CA: trusted
// with --key-server-ca, and a failure of it never leads to plain HTTP
// unless allowed.
func TestKeyServerHTTPS(t *testing.T) {
	w := newSeedWorld(t, sshtest.PyServerConfig{TLS: true})
	https := "--key-server-https-port=" + strconv.Itoa(w.srv.HTTPSPort)
	cases := []struct {
		name    string
		args    []string
		scheme  string // the key server requests, all of them; "" for a failure
		wantErr string
	}{
		{"unknown certificate", []string{https}, "", "certificate"},
		{"its CA given", []string{https, "--key-server-ca", w.srv.CAFile}, "https", ""},
		{"HTTP allowed", []string{https, "--key-server-insecure-http"}, "http", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			home := t.TempDir()
			before := len(w.srv.Requests())
			cmd := w.command(w.args(c.args...)...)
			cmd.Env = m2mEnv("HOME="+home, "PATH=/usr/bin:/bin")
			s, err := connect(t, ctx, cmd)
			reqs := w.srv.Requests()[before:]
			if c.scheme == "" {
				if err == nil {
					s.Close()
					t.Fatal("connected")
				}
				if !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(fmt.Sprint(cmd.Stderr), "--key-server-ca") {
					t.Fatalf("the host saw %q; stderr:\n%s", err, cmd.Stderr)
				}
				if len(reqs) != 0 {
					t.Fatalf("the key server saw %q after the HTTPS failure", reqs)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			callEcho(t, ctx, s)
			s.Close()
			want := []string{"GET " + c.scheme + " /server_pub_key", "POST " + c.scheme + " /register"}
			if strings.Join(reqs, ",") != strings.Join(want, ",") {
				t.Fatalf("requests %q, want %q", reqs, want)
			}
		})
	}
}

// An encrypted client key works with --passphrase, generated or given.
func TestKeyServerPassphrase(t *testing.T) {
	w := newSeedWorld(t, sshtest.PyServerConfig{})
	given := sshtest.Keygen(t, t.TempDir(), "given", sshtest.KeyOptions{Passphrase: "secret", Comment: "alice@laptop"})
	cases := []struct {
		name string
		args []string
		key  string
	}{
		{"generated", []string{"--passphrase", "secret"}, filepath.Join(w.home, ".ssh", "m2m_mcp_server_ssh_client")},
		{"given", []string{"--passphrase", "secret", "--client-key", given.Path}, given.Path},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := connect(t, ctx, w.command(w.args(c.args...)...))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			callEcho(t, ctx, s)
			s.Close()
			data, err := os.ReadFile(c.key)
			if err != nil {
				t.Fatal(err)
			}
			var missing *ssh.PassphraseMissingError
			if _, err := ssh.ParsePrivateKey(data); !errors.As(err, &missing) {
				t.Fatalf("%s is not encrypted: %v", c.key, err)
			}
		})
	}
}

// Each failure reaches the host as an error naming its cause, and ends
// m2m-ssh with an error line and a hint.
func TestKeyServerFailures(t *testing.T) {
	fault := func(path string, status int, msg string) sshtest.PyServerConfig {
		return sshtest.PyServerConfig{Fault: func(r *http.Request) (int, string, bool) {
			return status, msg, r.URL.Path == path
		}}
	}
	cases := []struct {
		name  string
		cfg   sshtest.PyServerConfig
		extra func(w *seedWorld) []string
		want  string
	}{
		{"server error", fault("/register", 500, "internal"), nil, "500 Internal Server Error"},
		{"bad request", fault("/register", 400, "Failed to register key"), nil, "400 Bad Request: Failed to register key"},
		{"unsupported media type", fault("/register", 415, "Content-Type must be application/json"), nil, "415 Unsupported Media Type"},
		{"rate limited", sshtest.PyServerConfig{RateLimit: 1, RateWindow: time.Hour}, nil, "Rate limit exceeded. Try again later."},
		{"key server refused", sshtest.PyServerConfig{}, func(w *seedWorld) []string {
			return []string{"--key-server-port", strconv.Itoa(sshtest.FreePort(t))}
		}, "Connection refused"},
		{"ssh refused", sshtest.PyServerConfig{}, func(w *seedWorld) []string {
			return []string{"--port", strconv.Itoa(sshtest.FreePort(t))}
		}, "Connection refused"},
		{"key not registered after all", fault("/register", 200, ""), nil, "Authentication failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			w := newSeedWorld(t, c.cfg)
			args := w.args()
			if c.extra != nil {
				args = append(args, c.extra(w)...)
			}
			wantStartFailure(t, ctx, w.command(args...), c.want)
		})
	}
}
