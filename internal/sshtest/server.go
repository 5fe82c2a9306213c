package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Program is what an in-process server runs for a session: kind is
// "shell", "exec" or "subsystem" and arg the command or subsystem name.
// It talks to the client over ch and returns the exit status.
type Program func(kind, arg string, ch ssh.Channel) int

// ServerConfig configures an in-process SSH server.
type ServerConfig struct {
	// Run serves each session.
	Run Program
	// Accept decides whether a shell, exec or subsystem request is
	// accepted; nil accepts all.
	Accept func(kind, arg string) bool
}

// Server is an in-process x/crypto/ssh server on 127.0.0.1, for fast unit
// tests and fault injection. It accepts the client key it made itself.
type Server struct {
	Addr      string
	HostKey   ssh.Signer
	ClientKey ssh.Signer

	cfg   ServerConfig
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// StartServer starts an in-process SSH server; it stops when the test ends.
func StartServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	s := &Server{HostKey: newSigner(t), ClientKey: newSigner(t), cfg: cfg}
	sc := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(s.ClientKey.PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errUnknownKey
		},
	}
	sc.AddHostKey(s.HostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.conns = make(map[net.Conn]bool)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.track(c, true)
			go func() {
				defer s.track(c, false)
				s.serve(c, sc)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.Drop()
	})
	return s
}

func (s *Server) track(c net.Conn, live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live {
		s.conns[c] = true
	} else {
		delete(s.conns, c)
	}
}

// Drop cuts every open connection at the TCP level, as a dying network
// or a crashed server would.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

var errUnknownKey = errors.New("sshtest: unknown client key")

// ClientConfig is a client configuration that trusts this server and
// authenticates with its client key.
func (s *Server) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            "test",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey.PublicKey()),
	}
}

// Dial connects a client to the server.
func (s *Server) Dial() (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr, s.ClientConfig())
}

func (s *Server) serve(c net.Conn, sc *ssh.ServerConfig) { serveSessions(c, sc, s.session, false) }

// serveSessions runs session, each in its own goroutine, on the session
// channels of one SSH connection until the client goes; it refuses other
// channels. With wait it returns, and closes the connection, only once
// every session has ended.
func serveSessions(c net.Conn, sc *ssh.ServerConfig, session func(ssh.Channel, <-chan *ssh.Request), wait bool) {
	conn, chans, reqs, err := ssh.NewServerConn(c, sc)
	if err != nil {
		c.Close()
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	if wait {
		defer wg.Wait()
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			session(ch, creqs)
		}()
	}
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		var kind, arg string
		switch req.Type {
		case "shell":
			kind = "shell"
		case "exec", "subsystem":
			kind = req.Type
			arg = parseString(req.Payload)
		default:
			req.Reply(req.Type == "env", nil)
			continue
		}
		if s.cfg.Accept != nil && !s.cfg.Accept(kind, arg) {
			req.Reply(false, nil)
			continue
		}
		req.Reply(true, nil)
		go ssh.DiscardRequests(reqs)
		status := s.cfg.Run(kind, arg, ch)
		ch.CloseWrite()
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		return
	}
}

func parseString(p []byte) string {
	if len(p) < 4 {
		return ""
	}
	n := binary.BigEndian.Uint32(p)
	if int(n) > len(p)-4 {
		return ""
	}
	return string(p[4 : 4+n])
}

func newSigner(t testing.TB) ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
