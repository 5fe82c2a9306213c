package mux

import (
	"context"
	"log/slog"

	"golang.org/x/crypto/ssh"
)

// A Server is the master side of the protocol: it serves the control
// connections a Listener accepts, opening session channels through Open.
type Server struct {
	// Open opens a session channel on the master's SSH connection. The
	// master process supplies it (it owns the connection, keepalive and
	// reconnect); the server sends the session's requests on it.
	Open func(ctx context.Context) (ssh.Channel, <-chan *ssh.Request, error)
	// Logger receives what the server did and refused; discarded when nil.
	Logger *slog.Logger
	// OnSessions, when set, is called with the number of live sessions
	// each time it changes (ControlPersist's clock). Calls do not overlap.
	OnSessions func(n int)
	// Terminate is called on MUX_C_TERMINATE (ssh -O exit), after the
	// answer is sent. The master then closes the listener and ends.
	Terminate func()
}

// Serve accepts control connections until l is closed, then returns nil
// (and the error of Accept otherwise). Each peer is checked to be this
// user's uid (SO_PEERCRED / getpeereid) before a byte is read from it.
// It serves hello, alive check, terminate and new session (exec,
// subsystem, shell, env; the exit status sent back as OpenSSH's master
// does), and answers every other request (forwardings, stdio forward,
// proxy, stop listening) with the protocol's failure message. Sessions
// and control connections are bounded (MaxConns, MaxSessions).
func (s *Server) Serve(l *Listener) error {
	return errNotImplemented
}

// Close ends every control connection Serve accepted, and with it each
// session's channel. It does not close the listener.
func (s *Server) Close() error {
	return nil
}
