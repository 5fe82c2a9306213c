package mux

import (
	"errors"
	"fmt"
)

// ErrNoMaster is the error of Dial when nobody listens at the control path
// (no socket, or a stale one): the caller connects directly instead. The
// error itself is a *NoMasterError.
var ErrNoMaster = errors.New("no master is listening")

// A NoMasterError is a control path where nobody listens.
type NoMasterError struct {
	Path string
	// Stale: a socket is there but nobody listens on it (its master died
	// without removing it); the caller may remove it, as ssh does.
	Stale bool
}

func (e *NoMasterError) Error() string {
	if e.Stale {
		return fmt.Sprintf("no master is listening on the control socket %s (a stale socket)", e.Path)
	}
	return fmt.Sprintf("no master is listening at %s (no socket there)", e.Path)
}

// Is makes errors.Is(err, ErrNoMaster) hold.
func (e *NoMasterError) Is(target error) bool { return target == ErrNoMaster }

// ErrMasterGone is the error of a session whose control connection ended
// before the master sent the exit status: the master went away.
var ErrMasterGone = errors.New("the shared connection ended")

// ErrUnsupported is the error of every entry point on a platform without
// Unix sockets and descriptor passing.
var ErrUnsupported = errors.New("connection sharing is not supported on this platform")

// A ProtocolError is a message from the peer that breaks the protocol: one
// too long, one that does not parse, an unexpected type or request id, or
// a version this package does not speak.
type ProtocolError struct {
	Path   string // the control path, when known
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Path == "" {
		return "connection-sharing protocol error: " + e.Reason
	}
	return fmt.Sprintf("the shared connection at %s broke the protocol: %s", e.Path, e.Reason)
}

// Permanent: a peer that breaks the protocol does so again.
func (e *ProtocolError) Permanent() bool { return true }

// A RefusedError is the master's answer MUX_S_FAILURE or
// MUX_S_PERMISSION_DENIED to a request, with the master's reason.
type RefusedError struct {
	Request string // what was asked: "new session", "alive check", ...
	Denied  bool   // MUX_S_PERMISSION_DENIED rather than MUX_S_FAILURE
	Reason  string // the master's words
}

func (e *RefusedError) Error() string {
	verb := "refused"
	if e.Denied {
		verb = "denied"
	}
	if e.Reason == "" {
		return fmt.Sprintf("the master %s the %s", verb, e.Request)
	}
	return fmt.Sprintf("the master %s the %s: %s", verb, e.Request, e.Reason)
}

// Permanent: the master answered; asking again gets the same answer.
func (e *RefusedError) Permanent() bool { return true }

// A SocketError is a control socket that is not to be trusted: not a
// socket, owned by another user, or reachable by group or others.
// Listen's refusal of the socket's directory is one too (Dir set).
type SocketError struct {
	Path   string
	Dir    bool   // Path is the socket's directory
	Reason string // "is owned by uid 1001, ...", "is accessible to group or others (mode 0666)", ...
}

func (e *SocketError) Error() string {
	if e.Dir {
		return fmt.Sprintf("the control socket's directory %s %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("the control socket %s %s", e.Path, e.Reason)
}

// Hint says what to do, as OpenSSH users would.
func (e *SocketError) Hint() string {
	if e.Dir {
		return fmt.Sprintf("set ControlPath to a path in a directory only you can write (such as ~/.ssh), or chmod go-w %s", e.Path)
	}
	return fmt.Sprintf("remove %s and start the master again (ssh -M), or set ControlPath to a path in a directory only you can write", e.Path)
}

// Permanent: the socket stays as it is until someone changes it.
func (e *SocketError) Permanent() bool { return true }
