package transport

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// heldServer is an in-process x/crypto server whose exec request is
// answered only once the program's first line has arrived (or never, for a
// client that waits for the answer before sending). It records what it
// saw, in the order it saw it.
type heldServer struct {
	addr   string
	accept bool // the answer to the exec request

	mu     sync.Mutex
	events []string
}

func (s *heldServer) record(e string) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *heldServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// startHeld starts a heldServer and a Dialer for it: the server takes the
// key sshtest makes, and the client knows the server's host key.
func startHeld(t *testing.T, accept bool) (*heldServer, *Dialer) {
	t.Helper()
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_ed25519", sshtest.KeyOptions{})
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key.Public))
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sc := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(want.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	sc.AddHostKey(host)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &heldServer{addr: l.Addr().String(), accept: accept}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c, sc)
		}
	}()

	kh := sshtest.WriteFile(t, dir, "known_hosts", fmt.Sprintf("[127.0.0.1]:%d %s", port(t, s.addr), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(host.PublicKey())))))
	cfg := sshtest.WriteFile(t, dir, "ssh_config",
		"Host held",
		"  HostName 127.0.0.1",
		fmt.Sprintf("  Port %d", port(t, s.addr)),
		"  User test",
		"  IdentityFile "+key.Path,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  UserKnownHostsFile "+kh,
		"  GlobalKnownHostsFile none",
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
	)
	logger := slog.New(slog.DiscardHandler)
	return s, testDialer(t, "held", sshcfg.Options{ConfigFile: cfg, Home: dir, Logger: logger}, nil)
}

// heldWait bounds how long the server waits for the first line before it
// answers the request anyway: a client that waits for the answer gets it,
// late, and the test sees the order.
const heldWait = 10 * time.Second

func (s *heldServer) serve(c net.Conn, sc *ssh.ServerConfig) {
	conn, chans, reqs, err := ssh.NewServerConn(c, sc)
	if err != nil {
		c.Close()
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, creqs)
	}
}

func (s *heldServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(ch).ReadString('\n')
		lines <- line
	}()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		s.record("exec")
		var line string
		select {
		case line = <-lines:
			s.record("data before the answer: " + strings.TrimSpace(line))
		case <-time.After(heldWait):
			s.record("no data before the answer")
		}
		req.Reply(s.accept, nil)
		if !s.accept {
			return
		}
		if line == "" {
			line = <-lines
		}
		io.WriteString(ch, line)
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
		return
	}
}

// The host's first frame goes out right after the exec request, without
// waiting for its answer: the server sees it before it answers.
func TestStartDoesNotWaitForTheAnswer(t *testing.T) {
	s, d := startHeld(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := sshtest.Within(t, 30*time.Second, func() string {
		r, err := SSH(d, Program{Command: "mcp-server"})(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.WriteString(r, "first frame\n"); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(); err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if err := Started(r); err != nil {
			t.Fatalf("Started = %v, want nil", err)
		}
		return string(b)
	})
	if out != "first frame\n" {
		t.Fatalf("the program echoed %q", out)
	}
	want := []string{"exec", "data before the answer: first frame"}
	if got := s.seen(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the server saw %q, want %q", got, want)
	}
}

// A refused request is the Remote's error, from Read and Wait, after the
// first frame went out.
func TestStartRefusedAfterTheFirstFrame(t *testing.T) {
	_, d := startHeld(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := SSH(d, Program{Command: "mcp-server"})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.WriteString(r, "first frame\n"); err != nil {
		t.Fatalf("the first write failed: %v", err)
	}
	readErr := sshtest.Within(t, 30*time.Second, func() error {
		_, err := io.ReadAll(r)
		return err
	})
	var ce *ChannelError
	if !errors.As(readErr, &ce) || ce.Program.Command != "mcp-server" || ce.Alias != "held" {
		t.Fatalf("Read ended with %v; want the refusal as a *ChannelError", readErr)
	}
	if err := Started(r); !errors.As(err, &ce) {
		t.Fatalf("Started = %v; want the refusal", err)
	}
	if err := r.Wait(); !errors.As(err, &ce) {
		t.Fatalf("Wait = %v; want the refusal", err)
	}
	if _, err := io.WriteString(r, "second\n"); !errors.As(err, &ce) {
		t.Fatalf("a write after the refusal = %v; want the refusal", err)
	}
	if err := r.CloseWrite(); !errors.As(err, &ce) {
		t.Fatalf("CloseWrite after the refusal = %v; want the refusal", err)
	}
}

// The gate opens at the connection's next write, and not before.
func TestNextWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(io.Discard, b)
	c := &watchedConn{Conn: a}
	gate := c.nextWrite()
	select {
	case <-gate:
		t.Fatal("the gate opened before any write")
	default:
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate:
	default:
		t.Fatal("the gate stayed shut after a write")
	}
	// A nil connection has nothing to watch.
	select {
	case <-(*watchedConn)(nil).nextWrite():
		t.Fatal("a nil connection's gate opened")
	default:
	}
}
