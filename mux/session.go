package mux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// A SessionRequest is what MUX_C_NEW_SESSION asks for: exactly one of
// Command (exec), Subsystem, or neither (a shell).
type SessionRequest struct {
	Command   string // exec: the command line
	Subsystem string // subsystem name (sent as the command, with the subsystem flag)
	// Env are "NAME=value" strings, sent as OpenSSH's client sends
	// SendEnv/SetEnv. An OpenSSH master passes on only the names its own
	// SendEnv allows; the server's AcceptEnv decides after that.
	Env []string
	// Agent asks the master to forward its agent to the program, which
	// it does when its own configuration says so (ForwardAgent): it is
	// ssh -A through a master.
	Agent bool
	// Term is TERM. A tty is never requested, and a master sends TERM
	// only with a tty request, so it is informational.
	Term string
}

// A Session is a session channel the master opened for a client; its
// stdio are the descriptors passed in NewSession.
type Session struct {
	id     uint32
	c      *Client
	closed atomic.Bool

	once   sync.Once
	status int
	err    error
}

// ID is the master's id of the session (its channel number).
func (s *Session) ID() uint32 { return s.id }

// Wait returns when the master sends MUX_S_EXIT_MESSAGE, with the exit
// status, or when the control connection ends without one (the master
// went away): then errors.Is(err, ErrMasterGone). Like OpenSSH's client it
// returns only once the master has closed the connection too, after the
// session's output is written. OpenSSH's master sends no exit message for
// a remote program killed by a signal (ssh then exits 255), so that case
// also gives ErrMasterGone; a caller that must tell the two apart can Dial
// and Check again. Close makes a blocked Wait return. Wait may be called
// more than once; every call gives the same result.
func (s *Session) Wait() (exitStatus int, err error) {
	s.once.Do(func() { s.status, s.err = s.wait() })
	return s.status, s.err
}

func (s *Session) wait() (int, error) {
	conn, path := s.c.conn, s.c.path
	status, seen := 0, false
	for {
		body, err := readMessage(conn)
		if err != nil {
			var pe *ProtocolError
			switch {
			case s.closed.Load():
				return 0, fmt.Errorf("the session through %s: %w", path, net.ErrClosed)
			case errors.As(err, &pe):
				pe.Path = path
			case seen && errors.Is(err, io.EOF):
				return status, nil
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
				return 0, fmt.Errorf("the shared connection at %s ended before the remote program's exit status: %w", path, ErrMasterGone)
			}
			conn.Close()
			if seen {
				return status, nil // the status is in; what broke after it is moot
			}
			if pe != nil {
				return 0, pe
			}
			return 0, fmt.Errorf("the shared connection at %s: %w: %w", path, ErrMasterGone, err)
		}
		m, err := parseFromMaster(body)
		switch {
		case err != nil:
		case m.Type == msgTTYAllocFailed && m.ID == s.id:
			continue // no tty was asked for; nothing to restore
		case m.Type != msgExit:
			err = &ProtocolError{Reason: fmt.Sprintf("a message of type 0x%08x during the session", m.Type)}
		case m.ID != s.id:
			err = &ProtocolError{Reason: fmt.Sprintf("the exit status of session %d, not of %d", m.ID, s.id)}
		case seen:
			err = &ProtocolError{Reason: "the exit status twice"}
		default:
			status, seen = int(m.Value), true
			continue
		}
		err.(*ProtocolError).Path = path
		conn.Close()
		return 0, err
	}
}

// Close closes the control connection, which makes the master close the
// session's channel, and makes a blocked Wait return.
func (s *Session) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.c.conn.Close()
}
