package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// DefaultConnectTimeout bounds the TCP connect and the SSH handshake when
// the configuration sets no ConnectTimeout, so that a black-holed host
// fails within seconds instead of the kernel's minutes.
const DefaultConnectTimeout = 15 * time.Second

// Version is the SSH client version string's software part.
var Version = "m2m-ssh"

// Dialer connects to one target with its identities and host key check.
type Dialer struct {
	Target     *sshcfg.Target
	Identities *agentauth.Identities
	HostKeys   *agentauth.HostKeyChecker
}

// Dial connects to the target and completes the SSH handshake and user
// authentication, all within the connect timeout.
func (d *Dialer) Dial(ctx context.Context) (*ssh.Client, error) {
	t := d.Target
	timeout := t.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addr := t.Addr()
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &DialError{Alias: t.Alias, Addr: addr, Stage: "connect", Err: err}
	}
	// x/crypto's handshake has no deadline of its own: the connection's
	// deadline covers it, and ctx ending (a signal) cuts it short.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{d.Identities.AuthMethod()},
		HostKeyCallback:   d.HostKeys.Callback(),
		HostKeyAlgorithms: d.HostKeys.Algorithms(),
		ClientVersion:     "SSH-2.0-" + Version,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil && !isCallerError(err) {
			err = fmt.Errorf("%w (after %s)", context.DeadlineExceeded, timeout)
		}
		return nil, &DialError{Alias: t.Alias, Addr: addr, Stage: "handshake", Err: d.Identities.AuthError(err)}
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// isCallerError reports whether err is a verdict of ours (a host key or an
// authentication refusal) rather than a cut connection.
func isCallerError(err error) bool {
	var h interface{ Hint() string }
	return errors.As(err, &h)
}

// DialError is a failure to reach a target: the TCP connect, or the SSH
// handshake and authentication.
type DialError struct {
	Alias string
	Addr  string
	Stage string // "connect" or "handshake"
	Err   error
}

func (e *DialError) Error() string {
	msg := e.Err.Error()
	if errors.Is(e.Err, syscall.ECONNREFUSED) {
		// OpenSSH's wording, which users search for.
		msg = "Connection refused"
	}
	msg = strings.TrimPrefix(msg, "ssh: handshake failed: ")
	return fmt.Sprintf("bridge: cannot %s to %s (%s): %s", verb(e.Stage), e.Alias, e.Addr, msg)
}

func verb(stage string) string {
	if stage == "connect" {
		return "connect"
	}
	return "log in"
}

func (e *DialError) Unwrap() error { return e.Err }

// Hint says what to do; errors from agentauth bring their own hints, which
// errors.As finds first.
func (e *DialError) Hint() string {
	var h interface{ Hint() string }
	if errors.As(e.Err, &h) {
		return h.Hint()
	}
	switch {
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at %s: check that sshd runs there and that HostName and Port are right ('m2m-ssh resolve %s' shows them)", e.Addr, e.Alias)
	case errors.Is(e.Err, context.DeadlineExceeded), isTimeout(e.Err):
		return fmt.Sprintf("%s did not answer in time: check the network path and firewall, or raise ConnectTimeout", e.Addr)
	case isDNS(e.Err):
		return fmt.Sprintf("the host name does not resolve: check HostName for %s ('m2m-ssh resolve %s')", e.Alias, e.Alias)
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de)
}
