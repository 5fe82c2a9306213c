package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// Program says what the session channel starts on the server: a subsystem,
// an exec of a command, or, when both are empty, a shell request (what
// m2m-mcp-server-ssh-server and authorized_keys command= keys answer).
type Program struct {
	Subsystem string
	Command   string
}

func (p Program) String() string {
	switch {
	case p.Subsystem != "":
		return "subsystem " + p.Subsystem
	case p.Command != "":
		return "exec " + p.Command
	}
	return "shell"
}

// Remote is one session with a remote MCP server: its stdout to read
// frames from and its stdin to write them to.
type Remote interface {
	io.Reader
	io.Writer
	// CloseWrite sends EOF to the server's stdin.
	CloseWrite() error
	// Stderr is the server's stderr.
	Stderr() io.Reader
	// Wait waits for the remote program to end and returns its exit
	// status as *ssh.ExitError, or *ssh.ExitMissingError when the
	// connection ended without one.
	Wait() error
	// Signal asks the server to deliver sig (a name without SIG:
	// "TERM", "KILL") to the remote program, with RFC 4254's "signal"
	// request. It returns *SignalError when the server refuses, and may
	// wait for the server's reply as long as the connection lasts.
	Signal(sig string) error
	// Close ends the session and its connection.
	Close() error
}

// Connect opens one session on a fresh connection. The bridge calls it to
// connect, and again to reconnect.
type Connect func(ctx context.Context) (Remote, error)

// SSH returns the Connect that dials with d and starts p. The Remote it
// returns takes writes before the server has answered the exec, subsystem
// or shell request (see startEarly); a refusal is then its error, a
// *ChannelError, from Read, Write and Wait.
func SSH(d *Dialer, p Program) Connect {
	return func(ctx context.Context) (Remote, error) {
		c, life, err := d.dial(ctx)
		if err != nil {
			return nil, err
		}
		r, err := open(c, life.err)
		if err == nil {
			d.prepare(c, r.ch)
			r.startEarly(p, d.Target.Alias, life.conn.nextWrite())
			return r, nil
		}
		c.Close()
		return nil, &ChannelError{Alias: d.Target.Alias, Program: p, Err: err}
	}
}

// Start opens a session channel on c and starts p in it, waiting for the
// server's answer. Closing the returned Remote closes c.
func Start(c *ssh.Client, p Program) (Remote, error) {
	r, err := open(c, nil)
	if err != nil {
		return nil, err
	}
	kind, payload := p.request()
	if err := request(r.ch, kind, payload); err != nil {
		r.ch.Close()
		return nil, err
	}
	close(r.started)
	r.sent.Store(true)
	return r, nil
}

// Started waits for the server's answer to the request that starts r's
// program, for a Remote SSH returned before it came: nil once the program
// runs, else why not (the refusal, a *ChannelError). Any other Remote has
// started by the time it is returned. Doctor asks, to report the channel
// step on its own; the bridge need not.
func Started(r Remote) error {
	if s, ok := r.(*sshRemote); ok {
		<-s.started
		return s.startErr
	}
	return nil
}

// open opens a session channel on c; lost says why the connection ended.
func open(c *ssh.Client, lost func() error) (*sshRemote, error) {
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		return nil, err
	}
	r := &sshRemote{client: c, ch: ch, exit: make(chan error, 1), lost: lost, started: make(chan struct{})}
	go r.watch(reqs)
	return r, nil
}

// request is the channel request that starts p, and its payload.
func (p Program) request() (string, []byte) {
	switch {
	case p.Subsystem != "":
		return "subsystem", ssh.Marshal(struct{ Name string }{p.Subsystem})
	case p.Command != "":
		return "exec", ssh.Marshal(struct{ Command string }{p.Command})
	}
	return "shell", nil
}

// request sends a request that must succeed and waits for the answer.
func request(ch ssh.Channel, kind string, payload []byte) error {
	ok, err := ch.SendRequest(kind, true, payload)
	if err == nil && !ok {
		err = fmt.Errorf("the server refused the %s request", kind)
	}
	return err
}

// startEarly sends the request that starts p without waiting for its
// answer, as OpenSSH's client does: the host's first frames follow the
// request at once instead of a round trip later. x/crypto's SendRequest
// waits for the answer, so it runs on its own goroutine, and writes wait
// only until the connection's next write is done (sent): the request's
// packet, since x/crypto writes one packet per write in the order they
// were sent. The server handles a channel's messages in order, so the
// data reaches a program that has started or, when the server refuses,
// nothing: the channel is closed and the refusal is the Remote's error.
//
// A packet another goroutine writes at that instant (x/crypto's reply to
// a global request, a keepalive) opens the gate too. Data still cannot
// overtake the request against OpenSSH's sshd, which opens a session
// channel with no window and grants one only as the program starts (so
// against it the first frame leaves with the answer, no sooner), and
// x/crypto's servers, which grant a window at once and gain the round
// trip, keep data that comes before the request. EOF is not held back by
// a window, so CloseWrite waits for the answer.
func (r *sshRemote) startEarly(p Program, alias string, sent <-chan struct{}) {
	r.gate = sent
	kind, payload := p.request()
	go func() {
		if err := request(r.ch, kind, payload); err != nil {
			r.startErr = &ChannelError{Alias: alias, Program: p, Err: err}
		}
		close(r.started)
		if r.startErr != nil {
			r.ch.Close()
		}
	}()
}

// sshRemote is a session channel used directly rather than through
// ssh.Session, whose Wait does not work for subsystems.
type sshRemote struct {
	client *ssh.Client
	ch     ssh.Channel
	exit   chan error
	// started is closed once the server has answered the request that
	// starts the program; startErr, set before, is its refusal.
	started  chan struct{}
	startErr error
	// gate is closed once the request is on its way; sent records that
	// a write has seen it closed.
	gate <-chan struct{}
	sent atomic.Bool
	// lost says why the connection was given up on (a keepalive
	// failure); nil when it was not or cannot tell.
	lost func() error
}

// Read reads the program's stdout. When the connection was given up on,
// the end of the stream is that failure rather than a clean EOF.
func (r *sshRemote) Read(p []byte) (int, error) {
	n, err := r.ch.Read(p)
	if err == io.EOF {
		// The answer comes before anything else from the channel,
		// but on another path: wait for it to be taken.
		<-r.started
		if r.startErr != nil {
			return n, r.startErr
		}
	}
	if err == io.EOF && r.lost != nil {
		if cause := r.lost(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (r *sshRemote) Write(p []byte) (int, error) {
	if err := r.await(); err != nil {
		return 0, err
	}
	n, err := r.ch.Write(p)
	if err != nil {
		err = r.failure(err)
	}
	return n, err
}

// CloseWrite waits for the answer to the program's request: unlike data,
// which a server that grants no window before the program starts holds
// back (see startEarly), an EOF could overtake the request if another
// packet opened the gate, and a program started after its EOF may never
// say how it ended.
func (r *sshRemote) CloseWrite() error {
	<-r.started
	if r.startErr != nil {
		return r.startErr
	}
	return r.failure(r.ch.CloseWrite())
}

func (r *sshRemote) Stderr() io.Reader { return r.ch.Stderr() }

// await returns once the request that starts the program is on its way,
// or with its refusal when that came first.
func (r *sshRemote) await() error {
	if r.sent.Load() {
		return nil
	}
	select {
	case <-r.gate:
	case <-r.started:
		if r.startErr != nil {
			return r.startErr
		}
	}
	r.sent.Store(true)
	return nil
}

// failure is err, or the refusal of the request when there was one: a
// write into the channel a refusal closed fails for that reason.
func (r *sshRemote) failure(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-r.started:
		if r.startErr != nil {
			return r.startErr
		}
	default:
	}
	return err
}

// Signal asks for a reply, which RFC 4254 leaves out, so that a refusal
// can be told and logged: OpenSSH refuses subsystem and forced-command
// sessions, and a server that knows no "signal" request must answer
// failure to one that wants a reply.
func (r *sshRemote) Signal(sig string) error {
	ok, err := r.ch.SendRequest("signal", true, ssh.Marshal(struct{ Signal string }{sig}))
	if err != nil {
		return err
	}
	if !ok {
		return &SignalError{Signal: sig}
	}
	return nil
}

func (r *sshRemote) Close() error {
	r.ch.Close()
	return r.client.Close()
}

// Wait returns the exit status once the channel's requests end; it may be
// called more than once.
func (r *sshRemote) Wait() error {
	err := <-r.exit
	r.exit <- err
	// The answer came before the channel closed; its goroutine is done
	// or about to be.
	<-r.started
	if r.startErr != nil {
		return r.startErr
	}
	return err
}

// watch reads the channel's requests for the program's exit status.
func (r *sshRemote) watch(reqs <-chan *ssh.Request) {
	var exit *ExitError
	for req := range reqs {
		switch req.Type {
		case "exit-status":
			var m struct{ Status uint32 }
			if ssh.Unmarshal(req.Payload, &m) == nil {
				exit = &ExitError{Status: int(m.Status)}
			}
		case "exit-signal":
			var m struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(req.Payload, &m) == nil {
				exit = &ExitError{Status: 128 + signalNumber(m.Signal), Signal: m.Signal}
			}
		}
		if req.WantReply {
			req.Reply(false, nil)
		}
	}
	switch {
	case exit == nil && r.lost != nil && r.lost() != nil:
		r.exit <- fmt.Errorf("%w: %w", ErrNoExitStatus, r.lost())
	case exit == nil:
		r.exit <- ErrNoExitStatus
	case exit.Status == 0:
		r.exit <- nil
	default:
		r.exit <- exit
	}
}

// ExitError is a remote program's exit with a non-zero status, or by a
// signal.
type ExitError struct {
	Status int
	Signal string // without the SIG prefix; empty when it exited
}

func (e *ExitError) Error() string {
	return "the remote program " + e.Outcome()
}

// Outcome says how the program ended, as the end of a sentence.
func (e *ExitError) Outcome() string {
	if e.Signal != "" {
		return "was killed by signal " + e.Signal
	}
	return fmt.Sprintf("exited with status %d", e.Status)
}

// SignalError is a signal the server would not deliver to the remote
// program.
type SignalError struct {
	Signal string
	// Shared is a session through a master, to which OpenSSH's
	// connection-sharing protocol cannot send a signal at all.
	Shared bool
}

func (e *SignalError) Error() string {
	if e.Shared {
		return "signal " + e.Signal + " cannot reach a program started through a shared connection (OpenSSH's protocol for it carries no signals)"
	}
	return "the server refused to deliver signal " + e.Signal + " to the remote program"
}

// ErrNoExitStatus is what Wait returns for a channel that closed without
// saying how the program ended: a lost connection, or a server that does
// not tell.
var ErrNoExitStatus = errors.New("the channel closed without an exit status")

func signalNumber(name string) int {
	switch name {
	case "HUP":
		return 1
	case "INT":
		return 2
	case "QUIT":
		return 3
	case "KILL":
		return 9
	case "SEGV":
		return 11
	case "PIPE":
		return 13
	case "TERM":
		return 15
	}
	return 0
}

// ChannelError is a session channel the server would not open or start.
type ChannelError struct {
	Alias   string
	Program Program
	Err     error
}

func (e *ChannelError) Error() string {
	return fmt.Sprintf("%s refused the %s request: %v", e.Alias, e.Program, e.Err)
}

func (e *ChannelError) Unwrap() error { return e.Err }

func (e *ChannelError) Hint() string {
	var oc *ssh.OpenChannelError
	switch {
	case errors.As(e.Err, &oc):
		return "the server does not allow session channels for this user; check sshd's logs"
	case e.Program.Subsystem != "":
		return fmt.Sprintf("add 'Subsystem %s /path/to/mcp-server' to the server's sshd_config, or give the command after -- instead", e.Program.Subsystem)
	case e.Program.Command != "":
		return "the server refuses exec requests (m2m-mcp-server-ssh-server accepts only a shell): drop the remote command and RemoteCommand"
	}
	return "the server refuses shell requests: give the MCP server's command after --, or use --subsystem"
}
