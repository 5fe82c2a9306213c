package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
)

// maxReady bounds what the starter reads from the readiness pipe: one
// message with an error and a hint fits many times over, and a master
// gone wrong cannot make the starter buffer without end.
const maxReady = 64 << 10

// readiness is the one message a master writes on its readiness pipe:
// its socket is up, or why it could not be.
type readiness struct {
	PID int `json:"pid"`
	// Error is the failure in the words m2m-ssh would have said it
	// directly; empty when the master is up.
	Error     string `json:"error,omitempty"`
	Hint      string `json:"hint,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	// Local says the failure is the master's own (its socket, its log,
	// its spec), not the server's: a direct connection may still work.
	Local bool `json:"local,omitempty"`
}

// writeReady writes r as the readiness message.
func writeReady(w io.Writer, r readiness) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// failure is the readiness message for err, with its hint and verdict.
func failure(err error) readiness {
	return readiness{Error: err.Error(), Hint: verdict.Hint(err), Permanent: verdict.Permanent(err), Local: NotShared(err)}
}

// errNotReady is a readiness pipe that ended with no message: the master
// died before it could say anything.
var errNotReady = errors.New("the master process ended before it was ready")

// readReady reads the readiness message from r, which the master closes
// after writing it (or by dying).
func readReady(r io.Reader) (readiness, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxReady+1))
	if err != nil {
		return readiness{}, err
	}
	if len(b) == 0 {
		return readiness{}, errNotReady
	}
	if len(b) > maxReady {
		return readiness{}, fmt.Errorf("the master's readiness message is over %d bytes", maxReady)
	}
	var m readiness
	if err := json.Unmarshal(b, &m); err != nil {
		return readiness{}, fmt.Errorf("the master's readiness message is not what m2m-ssh writes: %w", err)
	}
	if m.Error == "" && m.PID <= 0 {
		return readiness{}, fmt.Errorf("the master's readiness message names no process")
	}
	return m, nil
}

// WriteFailure tells the starter on ready (and closes it) that the master
// cannot start, for failures before Run: a spec it cannot read, a log it
// cannot open (which are Unshared).
func WriteFailure(ready io.WriteCloser, err error) {
	writeReady(ready, failure(err))
	ready.Close()
}

// An UnsharedError is a failure of sharing itself (the master's socket,
// lock, log or process), not of reaching the server: the session can
// still connect on its own.
type UnsharedError struct{ Err error }

// Unshared marks err as a failure of sharing itself.
func Unshared(err error) error { return &UnsharedError{Err: err} }

func (e *UnsharedError) Error() string   { return e.Err.Error() }
func (e *UnsharedError) Unwrap() error   { return e.Err }
func (e *UnsharedError) NotShared() bool { return true }

// NotShared reports whether err says the connection cannot be shared
// here, rather than that the server cannot be reached.
func NotShared(err error) bool {
	var n interface{ NotShared() bool }
	return errors.As(err, &n) && n.NotShared()
}
