package sshtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The expectations are Python 3's str.splitlines() on the same input.
func TestLineSplitter(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a\nb", []string{"a", "b"}},
		{"a\r\nb", []string{"a", "b"}},
		{"a\rb", []string{"a", "b"}},
		{"a\r\rb", []string{"a", "", "b"}},
		{"a\vb\fc", []string{"a", "b", "c"}},
		{"a\x1cb\x1dc\x1ed", []string{"a", "b", "c", "d"}},
		{"a\u0085b", []string{"a", "b"}},
		{"a\u2028b\u2029c", []string{"a", "b", "c"}},
		{"a\x1fb\x1b", []string{"a\x1fb\x1b"}},
		{"no end", []string{"no end"}},
		{"a\n\nb\n", []string{"a", "", "b"}},
		{`{"t":"x` + "\u2028" + `y"}` + "\n", []string{`{"t":"x`, `y"}`}},
		{`{"t":"x\u2028y"}` + "\r\n", []string{`{"t":"x\u2028y"}`}},
	}
	split := func(in string, chunk int) []string {
		sp := &lineSplitter{}
		var got []string
		for i := 0; i < len(in); i += chunk {
			got = append(got, sp.Write([]byte(in[i:min(i+chunk, len(in))]))...)
		}
		if rest := sp.Flush(); rest != "" {
			got = append(got, rest)
		}
		return got
	}
	for _, c := range cases {
		// Whole, and a byte at a time: a \r\n or a character split
		// across reads must not change the lines.
		for _, chunk := range []int{len(c.in), 1} {
			if got := split(c.in, chunk); !slices.Equal(got, c.want) {
				t.Errorf("split(%q) in chunks of %d = %q, want %q", c.in, chunk, got, c.want)
			}
		}
	}
}

func TestRawSeparators(t *testing.T) {
	in := `{"a":"x\u2028y\u0085z\\u2028","b":"\u2029"}`
	want := `{"a":"x` + "\u2028" + `y` + "\u0085" + `z\\u2028","b":"` + "\u2029" + `"}`
	if got := string(rawSeparators([]byte(in))); got != want {
		t.Fatalf("rawSeparators = %q, want %q", got, want)
	}
}

// The key server's API, as m2m-mcp-server-ssh-server answers it.
func TestPyServerKeyServerAPI(t *testing.T) {
	s := StartPyServer(t, PyServerConfig{RateLimit: 100})
	base := "http://127.0.0.1:" + strconv.Itoa(s.KeyServerPort)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newSigner(t).PublicKey())))
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey())))
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            map[string]string
	}{
		{"health", "GET", "/health", "", "", 200, map[string]string{"status": "healthy"}},
		{"server key", "GET", "/server_pub_key", "", "", 200, map[string]string{"server_pub_key": hostKey + " m2m-mcp-server-ssh-server"}},
		{"register", "POST", "/register", "application/json", `{"client_pub_key":"` + key + `"}`, 200, map[string]string{"status": "success"}},
		{"charset is fine", "POST", "/register", "application/json; charset=utf-8", `{"client_pub_key":"` + key + `"}`, 200, map[string]string{"status": "success"}},
		{"not JSON content", "POST", "/register", "text/plain", `{"client_pub_key":"` + key + `"}`, 415, map[string]string{"error": "Content-Type must be application/json"}},
		{"invalid JSON", "POST", "/register", "application/json", `{"client_pub_key":`, 400, map[string]string{"error": "Invalid JSON data"}},
		{"missing key", "POST", "/register", "application/json", `{"key":"x"}`, 400, map[string]string{"error": "Missing client_pub_key parameter"}},
		{"bad key", "POST", "/register", "application/json", `{"client_pub_key":"ssh-ed25519 nonsense"}`, 400, map[string]string{"error": "Failed to register key"}},
		{"unknown route", "GET", "/nope", "", "", 404, map[string]string{"error": "Not Found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status || len(got) != len(c.want) {
				t.Fatalf("%d %v, want %d %v", resp.StatusCode, got, c.status, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("%d %v, want %d %v", resp.StatusCode, got, c.status, c.want)
				}
			}
		})
	}
	if r := s.Registered(); len(r) != 2 || r[0] != key {
		t.Errorf("registered %q, want %q twice", r, key)
	}
}

func TestPyServerRateLimit(t *testing.T) {
	s := StartPyServer(t, PyServerConfig{}) // the real 10 per minute
	url := "http://127.0.0.1:" + strconv.Itoa(s.KeyServerPort) + "/health"
	for i := 1; i <= 11; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case i <= 10 && resp.StatusCode != 200:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		case i == 11 && (resp.StatusCode != 429 || !strings.Contains(string(body), "Rate limit exceeded. Try again later.")):
			t.Fatalf("request 11: %d %s, want 429", resp.StatusCode, body)
		}
	}
}

// The SSH side: only registered keys, only shell, and input split the way
// Python splits it, which cuts a frame holding a raw U+2028.
func TestPyServerSSH(t *testing.T) {
	mcp, err := Build(t.TempDir(), "./internal/testmcp", "testmcp")
	if err != nil {
		t.Fatal(err)
	}
	s := StartPyServer(t, PyServerConfig{MCP: mcp})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ClientConfig{
		User:            "mcp",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey()),
		Timeout:         10 * time.Second,
	}
	addr := "127.0.0.1:" + strconv.Itoa(s.Port)
	if c, err := ssh.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Fatal("an unregistered key logged in")
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	s.Register(line + " with-a-comment") // never matches, as with the real server
	if c, err := ssh.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Fatal("a key registered with a comment logged in")
	}
	s.Register(line)
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for _, req := range []struct {
		kind    string
		payload []byte
	}{
		{"exec", ssh.Marshal(struct{ S string }{mcp})},
		{"subsystem", ssh.Marshal(struct{ S string }{"mcp"})},
		{"pty-req", ssh.Marshal(struct {
			Term         string
			W, H, PW, PH uint32
			Modes        string
		}{Term: "xterm", W: 80, H: 24})},
	} {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(reqs)
		if ok, err := ch.SendRequest(req.kind, true, req.payload); err != nil || ok {
			t.Errorf("%s request: ok=%v err=%v; want a refusal", req.kind, ok, err)
		}
		ch.Close()
	}

	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("shell", true, nil); err != nil || !ok {
		t.Fatalf("shell request: ok=%v err=%v", ok, err)
	}
	defer ch.Close()
	frames := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"cut` + "\u2028" + `here"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"kept\u2028whole"}}}`,
	}
	if _, err := io.WriteString(ch, strings.Join(frames, "\r\n")+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(ch)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer to id 3: %v", err)
		}
		var m struct {
			ID     int `json:"id"`
			Result struct {
				Content []struct{ Text string } `json:"content"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("server wrote %q: %v", l, err)
		}
		if m.ID == 2 {
			t.Fatal("the frame with a raw U+2028 was answered; the server should have cut it")
		}
		if m.ID == 3 {
			if got := m.Result.Content[0].Text; got != "kept\u2028whole" {
				t.Fatalf("echo = %q", got)
			}
			if !strings.Contains(l, "\u2028") {
				t.Errorf("the answer %q carries U+2028 escaped; Python's server writes it raw", l)
			}
			break
		}
	}
	bad := s.BadLines()
	if len(bad) != 2 || !strings.HasSuffix(bad[0], `"cut`) || !strings.HasPrefix(bad[1], `here"`) {
		t.Fatalf("bad lines %q, want the frame with a raw U+2028 cut in two", bad)
	}
	if got := len(s.Lines()); got != 5 {
		t.Errorf("%d lines, want 5: %q", got, s.Lines())
	}
}
