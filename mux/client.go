package mux

import (
	"context"
	"os"
)

// Dial connects to the master listening at path and exchanges hellos.
//
// It first checks the socket as OpenSSH would trust it: a Unix socket
// owned by this user and not accessible to group or others; anything else
// is a [*SocketError]. A path where nobody listens (no such file, a stale
// socket) gives an error for which errors.Is(err, ErrNoMaster). The context
// bounds the connect and the hello exchange.
func Dial(ctx context.Context, path string) (*Client, error) {
	return nil, errNotImplemented
}

// A Client is one control connection to a master. Its methods may be
// called one at a time; after NewSession the connection belongs to the
// session.
type Client struct {
	path    string
	version uint32
}

// Path is the control path the client dialled.
func (c *Client) Path() string { return c.path }

// Version is the protocol version the master announced in its hello (4).
func (c *Client) Version() uint32 { return c.version }

// Check asks whether the master is alive (MUX_C_ALIVE_CHECK, ssh -O check)
// and returns the master's process id.
func (c *Client) Check(ctx context.Context) (pid uint32, err error) {
	return 0, errNotImplemented
}

// Exit asks the master to end (MUX_C_TERMINATE, ssh -O exit).
func (c *Client) Exit(ctx context.Context) error {
	return errNotImplemented
}

// NewSession asks the master for a session channel (MUX_C_NEW_SESSION),
// passes it stdin, stdout and stderr as descriptors (SCM_RIGHTS), then
// waits for MUX_S_SESSION_OPENED. The master duplicates the descriptors;
// the caller may close its copies once NewSession returns.
//
// The control connection then belongs to the session (OpenSSH uses one
// control connection per session): the Client must not be used for
// anything else afterwards, and closing the Session closes it.
func (c *Client) NewSession(ctx context.Context, req SessionRequest, stdin, stdout, stderr *os.File) (*Session, error) {
	return nil, errNotImplemented
}

// Close closes the control connection. A session opened on it ends.
func (c *Client) Close() error {
	return nil
}
