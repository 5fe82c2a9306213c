package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

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

// SSH returns the Connect that dials with d and starts p.
func SSH(d *Dialer, p Program) Connect {
	return func(ctx context.Context) (Remote, error) {
		c, life, err := d.dial(ctx)
		if err != nil {
			return nil, err
		}
		r, err := start(c, p, func(ch ssh.Channel) { d.prepare(c, ch) }, life.err)
		if err != nil {
			c.Close()
			return nil, &ChannelError{Alias: d.Target.Alias, Program: p, Err: err}
		}
		return r, nil
	}
}

// Start opens a session channel on c and starts p in it. Closing the
// returned Remote closes c.
func Start(c *ssh.Client, p Program) (Remote, error) {
	r, err := start(c, p, nil, nil)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// start is Start with the requests that come before the program's
// (environment, agent forwarding) made by prepare, and lost to say why
// the connection ended.
func start(c *ssh.Client, p Program, prepare func(ssh.Channel), lost func() error) (*sshRemote, error) {
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		return nil, err
	}
	r := &sshRemote{client: c, ch: ch, exit: make(chan error, 1), lost: lost}
	go r.watch(reqs)
	if prepare != nil {
		prepare(ch)
	}
	kind, payload := "shell", []byte(nil)
	switch {
	case p.Subsystem != "":
		kind, payload = "subsystem", ssh.Marshal(struct{ Name string }{p.Subsystem})
	case p.Command != "":
		kind, payload = "exec", ssh.Marshal(struct{ Command string }{p.Command})
	}
	ok, err := ch.SendRequest(kind, true, payload)
	if err == nil && !ok {
		err = fmt.Errorf("the server refused the %s request", kind)
	}
	if err != nil {
		ch.Close()
		return nil, err
	}
	return r, nil
}

// sshRemote is a session channel used directly rather than through
// ssh.Session, whose Wait does not work for subsystems.
type sshRemote struct {
	client *ssh.Client
	ch     ssh.Channel
	exit   chan error
	// lost says why the connection was given up on (a keepalive
	// failure); nil when it was not or cannot tell.
	lost func() error
}

// Read reads the program's stdout. When the connection was given up on,
// the end of the stream is that failure rather than a clean EOF.
func (r *sshRemote) Read(p []byte) (int, error) {
	n, err := r.ch.Read(p)
	if err == io.EOF && r.lost != nil {
		if cause := r.lost(); cause != nil {
			err = cause
		}
	}
	return n, err
}

func (r *sshRemote) Write(p []byte) (int, error) { return r.ch.Write(p) }
func (r *sshRemote) CloseWrite() error           { return r.ch.CloseWrite() }
func (r *sshRemote) Stderr() io.Reader           { return r.ch.Stderr() }

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
	return "bridge: the remote program " + e.Outcome()
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
var ErrNoExitStatus = errors.New("bridge: the channel closed without an exit status")

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
	return fmt.Sprintf("bridge: %s refused the %s request: %v", e.Alias, e.Program, e.Err)
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
