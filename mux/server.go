package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// A Server is the master side of the protocol: it serves the control
// connections a Listener accepts, opening session channels through Open.
type Server struct {
	// Open opens a session channel on the master's SSH connection. The
	// master process supplies it (it owns the connection, keepalive and
	// reconnect); the server sends the session's requests on it.
	Open func(ctx context.Context) (ssh.Channel, <-chan *ssh.Request, error)
	// ForwardAgent, when set, asks for agent forwarding on the channel of
	// a session whose client wants it (ssh -A, ForwardAgent), before its
	// environment, as OpenSSH's master does when its own ForwardAgent is
	// on. When nil, the wish is ignored, as there when it is off.
	ForwardAgent func(ch ssh.Channel)
	// Logger receives what the server did and refused; discarded when nil.
	Logger *slog.Logger
	// OnSessions, when set, is called with the number of live sessions
	// each time it changes (ControlPersist's clock). Calls do not overlap.
	OnSessions func(n int)
	// Terminate is called on MUX_C_TERMINATE (ssh -O exit), after the
	// answer is sent; the master then closes the listener and ends. When
	// nil, the request is denied.
	Terminate func()

	mu       sync.Mutex
	conns    map[*serverConn]struct{}
	sessions int
	lastID   uint32
	closed   bool
	notifyMu sync.Mutex // orders the OnSessions calls
}

// Serve accepts control connections until l is closed, then returns nil
// (and the error of Accept otherwise). Each peer is checked to run as
// this user or as root, as OpenSSH's master checks (SO_PEERCRED /
// getpeereid), before a byte is written to or read from it.
// It serves hello, alive check, terminate and new session (exec,
// subsystem, shell, env; the exit status sent back as OpenSSH's master
// does), and answers every other request (forwardings, stdio forward,
// proxy, stop listening) with the protocol's refusal. Control connections
// and sessions are bounded (MaxConns, MaxSessions).
//
// Where it differs from OpenSSH's master: it passes every environment
// string on (it has no SendEnv of its own; the server's AcceptEnv still
// decides); it never requests a tty or X11 forwarding (a tty request is
// answered with MUX_S_TTY_ALLOC_FAIL, so ssh leaves raw mode);
// and it answers MUX_S_SESSION_OPENED only once the server accepted the
// exec, subsystem or shell request, so that a refusal reaches the client
// as MUX_S_FAILURE with the reason (this costs one round trip to the
// server that OpenSSH's master does not wait for).
func (s *Server) Serve(l *Listener) error {
	if s.Open == nil {
		return errors.New("a connection-sharing server needs an Open function")
	}
	backoff := time.Duration(0)
	for {
		conn, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors, say: wait for some to be closed, as
			// net/http does, rather than end the master.
			if backoff == 0 {
				backoff = acceptBackoffMin
			} else if backoff *= 2; backoff > acceptBackoffMax {
				return fmt.Errorf("accepting on %s: %w", l.path, err)
			}
			s.logger().Warn("accepting a control connection failed; waiting", "err", err, "wait", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go s.serveConn(conn)
	}
}

const (
	// acceptBackoffMin and acceptBackoffMax bound the waits after a failed
	// Accept; past the longest, Serve gives up (some seconds in all).
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = 2 * time.Second
	// helloTimeout bounds the wait for a client's hello: ssh sends it at
	// once, and a peer that does not must not hold a connection slot.
	helloTimeout = 30 * time.Second
	// fdTimeout bounds the wait for a new session's descriptors, which a
	// client sends right after its request.
	fdTimeout = 30 * time.Second
	// writeTimeout bounds one answer's write: a client that asks and never
	// reads fills its socket's buffer and must not stall its reader.
	writeTimeout = 30 * time.Second
	// openTimeout bounds opening a session channel and its requests'
	// answers, in case the connection under the master stalls before
	// its keepalive notices.
	openTimeout = 2 * time.Minute
)

// Close ends every control connection Serve accepted, and with it each
// session's channel; later connections are refused. It does not close the
// listener.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	return nil
}

// trustedUID is OpenSSH's rule for either end of a control connection:
// the same user, or root (who could read the socket's secrets anyway).
func trustedUID(uid uint32) bool { return uid == 0 || uid == uint32(os.Getuid()) }

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) serveConn(conn *net.UnixConn) {
	log := s.logger()
	uid, err := peerUID(conn)
	if err != nil || !trustedUID(uid) {
		log.Warn("refused a control connection from another user", "uid", uid, "err", err)
		conn.Close()
		return
	}
	c := &serverConn{s: s, conn: conn, r: newFDReader(conn), log: log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	switch {
	case s.closed:
		err = errors.New("the server is closed")
	case len(s.conns) >= MaxConns:
		err = fmt.Errorf("%d control connections are open, the most a master serves", MaxConns)
	default:
		if s.conns == nil {
			s.conns = make(map[*serverConn]struct{})
		}
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		log.Warn("refused a control connection", "err", err)
		conn.Close()
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if err := c.run(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		log.Info("a control connection ended", "err", err)
	}
}

// acquire counts a new session in, unless the server is at MaxSessions.
func (s *Server) acquire() (uint32, bool) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	if s.closed || s.sessions >= MaxSessions {
		s.mu.Unlock()
		return 0, false
	}
	s.sessions++
	s.lastID++
	n, id := s.sessions, s.lastID
	s.mu.Unlock()
	if s.OnSessions != nil {
		s.OnSessions(n)
	}
	return id, true
}

func (s *Server) release() {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	s.mu.Lock()
	s.sessions--
	n := s.sessions
	s.mu.Unlock()
	if s.OnSessions != nil {
		s.OnSessions(n)
	}
}
