//go:build unix

package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"golang.org/x/crypto/ssh"
)

// A Master holds one SSH connection and serves it on a ControlPath.
type Master struct {
	// Path is the ControlPath.
	Path string
	// Dial makes the connection: transport.Dialer's Dial, so that host
	// keys, identities, jump hosts and keepalive are what a direct
	// m2m-ssh would use.
	Dial func(ctx context.Context) (*ssh.Client, error)
	// ForwardAgent, when set, is given the connection Dial made and
	// returns what asks for agent forwarding on a session's channel, for
	// the sessions whose clients want it (nil: none is forwarded):
	// transport.Dialer's AgentForwarder, so that the master forwards the
	// agent its own ForwardAgent names, as OpenSSH's master does.
	ForwardAgent func(c *ssh.Client) func(ch ssh.Channel)
	// Persist is ControlPersist.
	Persist Persist
	Logger  *slog.Logger
}

// Why a master ended, when nothing went wrong.
var (
	// ErrIdle: ControlPersist's time ran out with no session open.
	ErrIdle = errors.New("no session for ControlPersist's time")
	// ErrTerminated: ssh -O exit or m2m-ssh control ALIAS exit.
	ErrTerminated = errors.New("asked to exit")
)

// A ConnectionError is the master's connection ending under it: the
// master ends at once, and each session's control connection with it.
type ConnectionError struct{ Err error }

func (e *ConnectionError) Error() string {
	if e.Err == nil {
		return "the connection ended"
	}
	return "the connection ended: " + e.Err.Error()
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// Run dials, listens on m.Path and tells ready (then closes it) that it
// is up, or why not; then it serves until ControlPersist's time runs out
// with no session open (ErrIdle), it is asked to exit (ErrTerminated),
// the connection dies (*ConnectionError), or ctx ends (its cause). The
// socket is removed when Run returns.
func (m *Master) Run(ctx context.Context, ready io.WriteCloser) error {
	log := m.logger()
	fail := func(err error) error {
		log.Error("cannot start the shared connection", "err", err, "hint", verdict.Hint(err))
		WriteFailure(ready, err)
		return err
	}
	client, err := m.Dial(ctx)
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	l, err := mux.Listen(m.Path)
	if err != nil {
		return fail(Unshared(err))
	}
	defer l.Close()

	clock := newIdleClock(m.Persist)
	defer clock.stop()
	terminated := make(chan struct{})
	var once sync.Once
	srv := &mux.Server{
		Open: func(context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
			// Sessions only, on this host: whatever a client asks,
			// the master opens nothing else.
			return client.OpenChannel("session", nil)
		},
		Logger: log,
		OnSessions: func(n int) {
			log.Debug("sessions", "live", n)
			clock.sessions(n)
		},
		Terminate: func() { once.Do(func() { close(terminated) }) },
	}
	if m.ForwardAgent != nil {
		srv.ForwardAgent = m.ForwardAgent(client)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer srv.Close()
	lost := make(chan error, 1)
	go func() { lost <- client.Wait() }()

	if err := writeReady(ready, readiness{PID: os.Getpid()}); err != nil {
		// The starter gave up waiting; later m2m-ssh may still ride.
		log.Warn("the m2m-ssh that started the master is gone", "err", err)
	}
	ready.Close()
	log.Info("serving the shared connection", "path", m.Path, "persist", m.Persist.String())

	select {
	case <-clock.expired:
		err = ErrIdle
	case <-terminated:
		err = ErrTerminated
	case err = <-lost:
		err = &ConnectionError{Err: err}
	case err = <-served:
		if err == nil {
			err = errors.New("the control socket closed")
		}
		err = fmt.Errorf("serving the control socket: %w", err)
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	log.Info("the shared connection's master ends", "path", m.Path, "why", err)
	l.Close()      // no one new, and the socket goes
	srv.Close()    // each session's control connection ends: its m2m-ssh reconnects
	client.Close() // then the connection
	return err
}

func (m *Master) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return m.Logger
}
