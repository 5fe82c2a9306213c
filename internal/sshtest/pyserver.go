package sshtest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// PyServerConfig configures a stand-in for m2m-mcp-server-ssh-server.
type PyServerConfig struct {
	// MCP is the MCP server program started for each shell session.
	MCP string
	// RateLimit requests per RateWindow from one address, over all
	// routes; zero means the real server's 10 per 60 s.
	RateLimit  int
	RateWindow time.Duration
	// TLS also serves the key server over HTTPS, with a certificate for
	// 127.0.0.1 signed by CAFile.
	TLS bool
	// Fault, when set, may answer a key server request in place of the
	// API with an error status and message (400, 415, 500, ...); the
	// request still counts towards the rate limit. Status 200 answers a
	// registration with success without registering the key.
	Fault func(r *http.Request) (status int, message string, ok bool)
}

// PyServer is an in-process stand-in for m2m-mcp-server-ssh-server: an SSH
// server that accepts only a shell request (it refuses exec, subsystem and
// pty-req, as the real one does), authenticates only keys registered
// through its key server, splits its input into lines the way Python's
// str.splitlines() does, and writes each line to a real MCP server process;
// and its key server, with the real one's routes, bodies, status codes and
// rate limit.
type PyServer struct {
	Host string // 127.0.0.1
	Port int    // SSH
	// KeyServerPort is the plain-HTTP key server.
	KeyServerPort int
	// HTTPSPort is the HTTPS key server (with TLS), and CAFile the PEM
	// certificate that verifies it.
	HTTPSPort int
	CAFile    string

	cfg PyServerConfig
	t   testing.TB

	mu         sync.Mutex
	hostKey    ssh.Signer
	registered []string
	requests   []string
	lines      []string
	bad        []string
	hits       map[string][]time.Time
}

// StartPyServer starts the SSH server and its key server on 127.0.0.1;
// they stop when the test ends.
func StartPyServer(t testing.TB, cfg PyServerConfig) *PyServer {
	t.Helper()
	if cfg.RateLimit == 0 {
		cfg.RateLimit, cfg.RateWindow = 10, time.Minute
	}
	s := &PyServer{Host: "127.0.0.1", cfg: cfg, t: t, hostKey: newSigner(t), hits: map[string][]time.Time{}}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	var conns sync.Map
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})

	plain := httptest.NewServer(s)
	t.Cleanup(plain.Close)
	s.KeyServerPort = plain.Listener.Addr().(*net.TCPAddr).Port
	if cfg.TLS {
		secure := httptest.NewUnstartedServer(s)
		// Clients refusing the test certificate are what some tests are
		// about, not noise for the log.
		secure.Config.ErrorLog = log.New(io.Discard, "", 0)
		secure.StartTLS()
		t.Cleanup(secure.Close)
		s.HTTPSPort = secure.Listener.Addr().(*net.TCPAddr).Port
		s.CAFile = filepath.Join(t.TempDir(), "key-server-ca.pem")
		ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})
		if err := os.WriteFile(s.CAFile, ca, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// HostKey is the SSH server's current host key.
func (s *PyServer) HostKey() ssh.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostKey.PublicKey()
}

// RotateHostKey gives the server a new host key, for the connections and
// key server answers that follow.
func (s *PyServer) RotateHostKey() {
	k := newSigner(s.t)
	s.mu.Lock()
	s.hostKey = k
	s.mu.Unlock()
}

// Register authorizes a client key line, as POST /register does.
func (s *PyServer) Register(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registered = append(s.registered, line)
}

// Registered are the client key lines registered so far.
func (s *PyServer) Registered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.registered...)
}

// Requests are the key server requests so far, as "GET http /path" or
// "POST https /path".
func (s *PyServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Lines are the lines the SSH server split its input into and passed to
// the MCP server; BadLines those among them that were not JSON, which a
// frame cut at a line separator inside a string becomes.
func (s *PyServer) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// BadLines: see Lines.
func (s *PyServer) BadLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// ServeHTTP is the key server.
func (s *PyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+scheme+" "+r.URL.Path)
	recent := s.hits[addr][:0]
	for _, h := range s.hits[addr] {
		if now.Sub(h) < s.cfg.RateWindow {
			recent = append(recent, h)
		}
	}
	limited := len(recent) >= s.cfg.RateLimit
	if !limited {
		recent = append(recent, now)
	}
	s.hits[addr] = recent
	s.mu.Unlock()

	if limited {
		answer(w, http.StatusTooManyRequests, "error", "Rate limit exceeded. Try again later.")
		return
	}
	if s.cfg.Fault != nil {
		if status, msg, ok := s.cfg.Fault(r); ok {
			if status == http.StatusOK {
				answer(w, status, "status", "success")
				return
			}
			answer(w, status, "error", msg)
			return
		}
	}
	switch r.URL.Path {
	case "/health":
		if r.Method != http.MethodGet {
			answer(w, http.StatusMethodNotAllowed, "error", "Method Not Allowed")
			return
		}
		answer(w, http.StatusOK, "status", "healthy")
	case "/server_pub_key":
		if r.Method != http.MethodGet {
			answer(w, http.StatusMethodNotAllowed, "error", "Method Not Allowed")
			return
		}
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey())))
		answer(w, http.StatusOK, "server_pub_key", line+" m2m-mcp-server-ssh-server")
	case "/register":
		if r.Method != http.MethodPost {
			answer(w, http.StatusMethodNotAllowed, "error", "Method Not Allowed")
			return
		}
		// Flask's request.is_json: application/json or any +json type.
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			answer(w, http.StatusUnsupportedMediaType, "error", "Content-Type must be application/json")
			return
		}
		var body map[string]any
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if json.Unmarshal(data, &body) != nil {
			answer(w, http.StatusBadRequest, "error", "Invalid JSON data")
			return
		}
		key, _ := body["client_pub_key"].(string)
		if key == "" {
			answer(w, http.StatusBadRequest, "error", "Missing client_pub_key parameter")
			return
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key)); err != nil {
			answer(w, http.StatusBadRequest, "error", "Failed to register key")
			return
		}
		s.Register(key)
		answer(w, http.StatusOK, "status", "success")
	default:
		answer(w, http.StatusNotFound, "error", "Not Found")
	}
}

func answer(w http.ResponseWriter, status int, key, value string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{key: value})
}

// authorized compares the offered key with the registered lines as whole
// strings, as the real server does: a line registered with a comment never
// matches.
func (s *PyServer) authorized(k ssh.PublicKey) bool {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.registered {
		if r == line {
			return true
		}
	}
	return false
}

func (s *PyServer) serve(c net.Conn) {
	sc := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if s.authorized(k) {
				return nil, nil
			}
			return nil, errUnknownKey
		},
	}
	s.mu.Lock()
	sc.AddHostKey(s.hostKey)
	s.mu.Unlock()
	serveSessions(c, sc, s.session, true)
}

func (s *PyServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "env":
			req.Reply(true, nil)
		case "shell":
			req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			status := s.runMCP(ch)
			ch.CloseWrite()
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
			return
		default: // exec, subsystem, pty-req, ...
			req.Reply(false, nil)
		}
	}
}

// runMCP runs the MCP server for one session: the client's input split
// into lines, each written to the server with "\n"; the server's output
// written back as Python's json would, with U+2028 and friends raw.
func (s *PyServer) runMCP(ch ssh.Channel) int {
	cmd := exec.Command(s.cfg.MCP)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		io.WriteString(ch.Stderr(), err.Error()+"\n")
		return 127
	}
	go func() {
		defer stdin.Close()
		sp := &lineSplitter{}
		buf := make([]byte, 32<<10)
		for {
			n, err := ch.Read(buf)
			for _, line := range sp.Write(buf[:n]) {
				if !s.record(line) {
					continue
				}
				if _, werr := io.WriteString(stdin, line+"\n"); werr != nil {
					return
				}
			}
			if err != nil {
				if line := sp.Flush(); line != "" && s.record(line) {
					io.WriteString(stdin, line+"\n")
				}
				return
			}
		}
	}()
	out := make([]byte, 256<<10)
	var pending []byte
	for {
		n, err := stdout.Read(out)
		pending = append(pending, out[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			if _, werr := ch.Write(append(rawSeparators(pending[:i]), '\n')); werr != nil {
				cmd.Process.Kill()
				break
			}
			pending = pending[i+1:]
		}
		if err != nil {
			break
		}
	}
	cmd.Wait()
	return cmd.ProcessState.ExitCode()
}

// record notes a line; it reports whether the line is passed on. Blank
// lines are skipped, and lines that are not JSON are dropped, as the real
// server fails to parse them and goes on (go-sdk's server would end the
// session instead).
func (s *PyServer) record(line string) bool {
	if strings.TrimSpace(line) == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, line)
	if !json.Valid([]byte(line)) {
		s.bad = append(s.bad, line)
		return false
	}
	return true
}

// lineSplitter splits a byte stream into lines at the boundaries of
// Python's str.splitlines(): \n, \r, \r\n, \v, \f, \x1c, \x1d, \x1e,
// U+0085, U+2028 and U+2029. A line is returned once its end has arrived.
type lineSplitter struct {
	buf     []byte
	afterCR bool // the last boundary was a \r: a \n right after it belongs to it
}

// Write adds input and returns the lines it completes.
func (sp *lineSplitter) Write(p []byte) []string {
	sp.buf = append(sp.buf, p...)
	var lines []string
	start := 0
	for i := 0; i < len(sp.buf); {
		r, size := utf8.DecodeRune(sp.buf[i:])
		if r == utf8.RuneError && size == 1 && !utf8.FullRune(sp.buf[i:]) {
			break // the rest of a character is still to come
		}
		if sp.afterCR && i == start && r == '\n' {
			sp.afterCR = false
			i += size
			start = i
			continue
		}
		sp.afterCR = false
		if isLineBoundary(r) {
			lines = append(lines, string(sp.buf[start:i]))
			sp.afterCR = r == '\r'
			i += size
			start = i
			continue
		}
		i += size
	}
	sp.buf = append(sp.buf[:0], sp.buf[start:]...)
	return lines
}

// Flush returns what is left: a last line without a line end.
func (sp *lineSplitter) Flush() string {
	line := string(sp.buf)
	sp.buf = sp.buf[:0]
	return line
}

func isLineBoundary(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
		return true
	}
	return false
}

// rawSeparators writes the JSON escapes \u0085, \u2028 and \u2029 inside
// strings as the raw characters, as Python's json.dumps(ensure_ascii=False)
// and pydantic do, so that a client must carry them raw.
func rawSeparators(frame []byte) []byte {
	out := make([]byte, 0, len(frame))
	inString := false
	for i := 0; i < len(frame); i++ {
		c := frame[i]
		switch {
		case c == '"':
			inString = !inString
		case inString && c == '\\' && i+1 < len(frame):
			if frame[i+1] == 'u' && i+6 <= len(frame) {
				switch strings.ToLower(string(frame[i+2 : i+6])) {
				case "0085", "2028", "2029":
					v, _ := strconv.ParseUint(string(frame[i+2:i+6]), 16, 32)
					out = utf8.AppendRune(out, rune(v))
					i += 5
					continue
				}
			}
			out = append(out, c, frame[i+1])
			i++
			continue
		}
		out = append(out, c)
	}
	return out
}
