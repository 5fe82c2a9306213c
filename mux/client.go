package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dial connects to the master listening at path and exchanges hellos.
//
// It first checks the socket as OpenSSH's users trust it: a Unix socket
// owned by this user and not accessible to group or others, served by a
// process of this user (or root); anything else is a [*SocketError]. A path where
// nobody listens (no such file, a stale socket) gives a [*NoMasterError],
// for which errors.Is(err, ErrNoMaster). A master that answers with
// another protocol version, or not with a hello, is a [*ProtocolError].
// The context bounds the connect and the hello exchange.
func Dial(ctx context.Context, path string) (*Client, error) {
	conn, err := dialSocket(ctx, path)
	if err != nil {
		return nil, err
	}
	c := &Client{path: path, conn: conn}
	if err := c.do(ctx, "hello", c.hello); err != nil {
		return nil, err
	}
	return c, nil
}

// A Client is one control connection to a master. Its methods may be
// called one at a time; after NewSession the connection belongs to the
// session. A call that fails (its context done, the master gone, a
// message that breaks the protocol) closes the connection.
type Client struct {
	path    string
	conn    *net.UnixConn
	version uint32
	nextID  uint32

	mu     sync.Mutex // one call at a time
	failed error      // why the connection was closed, once it is
}

// longAgo is a deadline in the past: setting it ends any blocked I/O.
var longAgo = time.Unix(1, 0)

// Path is the control path the client dialled.
func (c *Client) Path() string { return c.path }

// Version is the protocol version the master announced in its hello (4).
func (c *Client) Version() uint32 { return c.version }

// do runs one exchange with the master under ctx. An error leaves the
// stream at an unknown point: the connection is closed and stays failed.
func (c *Client) do(ctx context.Context, what string, f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return c.failed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("the %s with the master at %s: %w", what, c.path, err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.conn.SetDeadline(longAgo)
		close(fired)
	})
	err := f()
	if !stop() {
		<-fired
		if err == nil {
			c.conn.SetDeadline(time.Time{})
		}
	}
	if err == nil {
		return nil
	}
	var pe *ProtocolError
	var re *RefusedError
	switch {
	case errors.As(err, &re):
		return err // an answer: the stream is in step
	case ctx.Err() != nil:
		err = fmt.Errorf("the master at %s gave no answer to the %s: %w", c.path, what, ctx.Err())
	case errors.As(err, &pe):
		pe.Path = c.path
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
		err = fmt.Errorf("the master at %s closed the connection during the %s: %w", c.path, what, ErrMasterGone)
	default:
		err = fmt.Errorf("the %s with the master at %s: %w", what, c.path, err)
	}
	c.fail(err)
	return err
}

func (c *Client) fail(err error) {
	if c.failed == nil {
		c.failed = err
		c.conn.Close()
	}
}

func (c *Client) write(b *builder) error {
	msg, err := b.frame()
	if err != nil {
		return err
	}
	_, err = c.conn.Write(msg)
	return err
}

func (c *Client) read() (fromMaster, error) {
	body, err := readMessage(c.conn)
	if err != nil {
		return fromMaster{}, err
	}
	return parseFromMaster(body)
}

func (c *Client) hello() error {
	if err := c.write(newBuilder(msgHello).u32(protocolVersion)); err != nil {
		return err
	}
	m, err := c.read()
	if err != nil {
		return err
	}
	if m.Type != msgHello {
		return &ProtocolError{Reason: fmt.Sprintf("a message of type 0x%08x instead of a hello", m.Type)}
	}
	if m.Value != protocolVersion {
		return &ProtocolError{Reason: fmt.Sprintf("protocol version %d, not %d", m.Value, protocolVersion)}
	}
	c.version = m.Value
	return nil
}

// request sends a request with the next id and reads the master's answer
// to it; a failure or denial is a *RefusedError.
func (c *Client) request(what string, b func(id uint32) *builder) (fromMaster, error) {
	c.nextID++
	id := c.nextID
	if err := c.write(b(id)); err != nil {
		return fromMaster{}, err
	}
	m, err := c.read()
	if err != nil {
		return m, err
	}
	if m.Type == msgHello || m.Type == msgExit || m.Type == msgTTYAllocFailed {
		return m, &ProtocolError{Reason: fmt.Sprintf("a message of type 0x%08x in answer to the %s", m.Type, what)}
	}
	if m.ID != id {
		return m, &ProtocolError{Reason: fmt.Sprintf("an answer to request %d, not to %d", m.ID, id)}
	}
	if m.Type == msgFailure || m.Type == msgDenied {
		return m, &RefusedError{Request: what, Denied: m.Type == msgDenied, Reason: m.Reason}
	}
	return m, nil
}

func unexpected(m fromMaster, what string) error {
	return &ProtocolError{Reason: fmt.Sprintf("a message of type 0x%08x in answer to the %s", m.Type, what)}
}

// Check asks whether the master is alive (MUX_C_ALIVE_CHECK, ssh -O check)
// and returns the master's process id.
func (c *Client) Check(ctx context.Context) (pid uint32, err error) {
	err = c.do(ctx, "alive check", func() error {
		m, err := c.request("alive check", func(id uint32) *builder {
			return newBuilder(msgAliveCheck).u32(id)
		})
		if err != nil {
			return err
		}
		if m.Type != msgAlive {
			return unexpected(m, "alive check")
		}
		pid = m.Value
		return nil
	})
	return pid, err
}

// Exit asks the master to end (MUX_C_TERMINATE, ssh -O exit). A master
// that ends before its answer reaches us (OpenSSH's often does) has done
// what was asked.
func (c *Client) Exit(ctx context.Context) error {
	return c.do(ctx, "exit request", func() error {
		m, err := c.request("exit request", func(id uint32) *builder {
			return newBuilder(msgTerminate).u32(id)
		})
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Type != msgOK {
			return unexpected(m, "exit request")
		}
		return nil
	})
}

// NewSession asks the master for a session channel (MUX_C_NEW_SESSION),
// passes it stdin, stdout and stderr as descriptors (SCM_RIGHTS), then
// waits for MUX_S_SESSION_OPENED; a refusal is a [*RefusedError]. The
// master duplicates the descriptors (and, as OpenSSH's does, makes them
// non-blocking): the caller may close its copies once NewSession returns.
//
// The caller may write its first input into stdin before NewSession
// returns: a pipe holds it until the master reads it, once the session
// is open, which saves the round trip of waiting for the answer.
//
// The control connection then belongs to the session (OpenSSH uses one
// control connection per session): the Client must not be used for
// anything else afterwards, and closing the Session closes it.
func (c *Client) NewSession(ctx context.Context, req SessionRequest, stdin, stdout, stderr *os.File) (*Session, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	var sid uint32
	err := c.do(ctx, "session request", func() error {
		c.nextID++
		id := c.nextID
		if err := c.write(req.message(id)); err != nil {
			return err
		}
		for _, f := range []*os.File{stdin, stdout, stderr} {
			if err := sendFD(c.conn, f); err != nil {
				return fmt.Errorf("passing the session's descriptors: %w", err)
			}
		}
		m, err := c.read()
		if err != nil {
			return err
		}
		if m.Type != msgSessionOpened && m.Type != msgFailure && m.Type != msgDenied {
			return unexpected(m, "session request")
		}
		if m.ID != id {
			return &ProtocolError{Reason: fmt.Sprintf("an answer to request %d, not to %d", m.ID, id)}
		}
		if m.Type != msgSessionOpened {
			return &RefusedError{Request: "session request", Denied: m.Type == msgDenied, Reason: m.Reason}
		}
		sid = m.Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Session{id: sid, c: c}, nil
}

// Close closes the control connection. A session opened on it ends.
func (c *Client) Close() error {
	c.conn.SetDeadline(longAgo) // a call blocked in do gives up
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return nil
	}
	c.failed = fmt.Errorf("the connection to the master at %s: %w", c.path, net.ErrClosed)
	return c.conn.Close()
}

// check refuses what the master could not carry: both a command and a
// subsystem, or a NUL in a string (the master reads C strings).
func (r SessionRequest) check() error {
	if r.Command != "" && r.Subsystem != "" {
		return errors.New("a session runs a command or a subsystem, not both")
	}
	for _, s := range append([]string{r.Command, r.Subsystem, r.Term}, r.Env...) {
		if strings.IndexByte(s, 0) >= 0 {
			return errors.New("a session request may not hold a NUL byte")
		}
	}
	for _, e := range r.Env {
		if i := strings.IndexByte(e, '='); i <= 0 {
			return fmt.Errorf("the environment string %q is not NAME=value", e)
		}
	}
	return nil
}

// message is MUX_C_NEW_SESSION in mux.c's field order: reserved, want
// tty, X11, agent, subsystem flag, escape char, TERM, command, env....
func (r SessionRequest) message(id uint32) *builder {
	cmd := r.Command
	if r.Subsystem != "" {
		cmd = r.Subsystem
	}
	b := newBuilder(msgNewSession).u32(id).str("").
		bool(false).bool(false).bool(r.Agent).bool(r.Subsystem != "").
		u32(noEscapeChar).str(r.Term).str(cmd)
	for _, e := range r.Env {
		b.str(e)
	}
	return b
}

// isReset: a peer that died with data unread resets the connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
