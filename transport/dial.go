package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// DefaultConnectTimeout bounds the TCP connect and the SSH handshake when
// the configuration sets no ConnectTimeout, so that a black-holed host
// fails within seconds instead of the kernel's minutes.
const DefaultConnectTimeout = 15 * time.Second

// Version is the SSH client version string's software part.
var Version = "m2m-ssh"

// Dialer connects to one target with its identities and host key check,
// through its jump hosts or ProxyCommand when it has them.
type Dialer struct {
	Target     *sshcfg.Target
	Identities *agentauth.Identities
	HostKeys   *agentauth.HostKeyChecker

	// Config is how Target was resolved. Jump hosts are resolved with
	// the same files and settings, but without its Options: ssh passes
	// only -F to the ssh it runs for a jump host, not -o.
	Config sshcfg.Options
	// IdentityOptions and HostKeyOptions load each jump host's
	// identities and known hosts.
	IdentityOptions agentauth.IdentityOptions
	HostKeyOptions  agentauth.HostKeyOptions
	// Logger receives ProxyCommand's stderr, keepalive failures and
	// refused env requests; nil discards them.
	Logger *slog.Logger
	// Trace, when set, is told of each step of each hop.
	Trace *Trace
	// Resolver looks up host names and BindAddress; nil is
	// net.DefaultResolver.
	Resolver Resolver

	// afterAttempt, when set, is told of each failed round of direct
	// connection attempts (tests).
	afterAttempt func(attempt int, err error)
}

// maxHops bounds a ProxyJump chain, which configuration can make circular.
const maxHops = 16

// Dial connects to the target and completes the SSH handshake and user
// authentication. Each hop (jump host or target) gets its own connect
// timeout, covering its connect and its handshake together. Closing the
// client closes everything the dial opened: jump host connections and
// ProxyCommand processes.
func (d *Dialer) Dial(ctx context.Context) (*ssh.Client, error) {
	c, _, err := d.dial(ctx)
	return c, err
}

// dial is Dial that also returns the connection's lifeline, which says why
// it ended when a keepalive gave up on it.
func (d *Dialer) dial(ctx context.Context) (*ssh.Client, *lifeline, error) {
	life := &lifeline{}
	c, err := d.reach(ctx, hop{t: d.Target, ids: d.Identities, hk: d.HostKeys}, life, 0)
	if err != nil {
		life.close()
		return nil, nil, err
	}
	go func() {
		c.Wait()
		life.close()
	}()
	return c, life, nil
}

// hop is one machine on the way: a jump host or the target.
type hop struct {
	t   *sshcfg.Target
	ids *agentauth.Identities
	hk  *agentauth.HostKeyChecker
	// jumpFor is the alias of the host this one is a jump host for;
	// empty for the target.
	jumpFor string
}

// reach connects to h, through its own jump hosts first.
func (d *Dialer) reach(ctx context.Context, h hop, life *lifeline, depth int) (*ssh.Client, error) {
	if depth > maxHops {
		return nil, &DialError{Alias: h.t.Alias, Addr: h.t.Addr(), JumpFor: h.jumpFor, Stage: "connect",
			Err: fmt.Errorf("more than %d jump hosts: is ProxyJump circular?", maxHops)}
	}
	var via *ssh.Client
	viaName := ""
	if h.t.ProxyJump != "" {
		jump, err := d.jumpHop(h.t)
		if err != nil {
			return nil, err
		}
		life.add(func() { jump.ids.Close() })
		if via, err = d.reach(ctx, jump, life, depth+1); err != nil {
			return nil, err
		}
		viaName = jump.t.Alias
		d.logger().Debug("through jump host", "target", h.t.Alias, "jump", viaName, "addr", h.t.Addr())
	}

	if via == nil && h.t.ProxyCommand != "" {
		viaName = "ProxyCommand"
	}
	th := Hop{Target: h.t, JumpFor: h.jumpFor, Via: viaName}

	timeout := hopTimeout(h.t, via == nil && h.t.ProxyCommand == "")
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var clock *handshakeClock // the handshake's time, once it starts
	fail := func(stage string, err error) error {
		outOfTime := hctx.Err() != nil
		if clock != nil {
			outOfTime = clock.expired()
		}
		switch {
		case ctx.Err() != nil:
			err = ctx.Err() // the caller gave up: a signal
		case outOfTime && !verdict.Permanent(err):
			// A verdict stands; anything else that failed as the time
			// ran out failed because it ran out.
			err = &TimeoutError{After: timeout, Stage: stage}
		}
		return &DialError{Alias: h.t.Alias, Addr: h.t.Addr(), JumpFor: h.jumpFor, Via: viaName, Stage: stage, Err: err}
	}

	alg, err := newAlgorithms(h.t, d.logger())
	if err != nil {
		return nil, fail("connect", err)
	}
	start := time.Now()
	raw, err := d.transport(hctx, th, h.t, via, life)
	if err != nil {
		err = fail("connect", err)
		d.Trace.connected(th, "", err, time.Since(start))
		return nil, err
	}
	d.Trace.connected(th, remoteName(raw, th), nil, time.Since(start))
	conn := &watchedConn{Conn: fastConn(raw)}
	conn.touch()
	if depth == 0 {
		life.conn = conn
	}
	// x/crypto's handshake has no timeout of its own, and a channel
	// through a jump host has no deadlines: closing the connection is
	// what cuts a stalled handshake short. The clock stands still while
	// the askpass program asks a person.
	stopCancel := context.AfterFunc(ctx, func() { conn.Close() })
	left := timeout
	if dl, ok := hctx.Deadline(); ok {
		left = time.Until(dl)
	}
	// An askpass program still asking when the time runs out is
	// stopped: its answer would go nowhere.
	askCtx, stopAsking := context.WithCancel(ctx)
	defer stopAsking()
	clock = startClock(left, func() {
		conn.Close()
		stopAsking()
	})

	signers := alg.signers(h.ids.Signers())
	cfg := &ssh.ClientConfig{
		User:            h.t.User,
		HostKeyCallback: h.hk.Callback(),
		ClientVersion:   "SSH-2.0-" + Version,
	}
	alg.apply(cfg, h.hk.Algorithms())
	publickey := ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return signers, nil })
	var sc net.Conn = conn
	var tr *traceHandshake
	if d.Trace != nil {
		tr = &traceHandshake{conn: &versionConn{Conn: conn}}
		sc = tr.conn
		cfg.HostKeyCallback = tr.hostKeyCallback(cfg.HostKeyCallback)
		publickey = tr.authMethod(signers)
	}
	login := h.ids.Login(agentauth.LoginOptions{Context: askCtx, Publickey: publickey, Asking: clock.ask})
	cfg.Auth = []ssh.AuthMethod{publickey}
	cfg.AuthCallback = login.Callback
	start = time.Now()
	c, chans, reqs, err := ssh.NewClientConn(sc, h.t.Addr(), cfg)
	inTime, notCancelled := clock.stop(), stopCancel()
	if (!inTime || !notCancelled) && err == nil {
		// The timeout fired as the handshake completed.
		c.Close()
		err = errors.New("handshake cut short")
	}
	if err != nil {
		if pc, ok := raw.(*proxyConn); ok && !clock.expired() && ctx.Err() == nil {
			err = pc.explain(err)
		}
		conn.Close()
		err = fail("handshake", alg.explain(err, login.Error(err), h.ids.Signers()))
		d.traceLogin(th, h, tr, err, time.Since(start))
		return nil, err
	}
	d.traceLogin(th, h, tr, nil, time.Since(start))
	client := ssh.NewClient(c, chans, reqs)
	life.add(func() { client.Close() })
	d.keepalive(client, conn, h, life)
	return client, nil
}

// transport opens the byte stream the SSH connection to t runs over: a
// channel through the previous jump host, ProxyCommand's stdin and stdout,
// or a TCP connection.
func (d *Dialer) transport(ctx context.Context, th Hop, t *sshcfg.Target, via *ssh.Client, life *lifeline) (net.Conn, error) {
	switch {
	case via != nil:
		return via.DialContext(ctx, "tcp", t.Addr())
	case t.ProxyCommand != "":
		pc, err := startProxy(t, d.logger())
		if err != nil {
			return nil, err
		}
		life.add(func() { pc.Close() })
		return pc, nil
	}
	return d.dialTCP(ctx, th, t)
}

// remoteName is what a trace calls the other end of the stream to a hop.
func remoteName(c net.Conn, th Hop) string {
	if th.Via != "" {
		return th.Target.Addr() + " via " + th.Via
	}
	return c.RemoteAddr().String()
}

// traceLogin reports a hop's handshake and authentication to the trace:
// which of the two failed follows from whether the host key was accepted.
func (d *Dialer) traceLogin(th Hop, h hop, tr *traceHandshake, err error, took time.Duration) {
	if tr == nil {
		return
	}
	hs := Handshake{ServerVersion: tr.conn.serverLine(), HostKey: tr.key}
	switch {
	case tr.keyErr != nil:
		// The verdict on the key says it all, and names the host.
		d.Trace.handshake(th, hs, tr.keyErr)
		return
	case tr.key == nil:
		d.Trace.handshake(th, hs, err)
		return
	}
	if k, ok := h.hk.Trusted(tr.key); ok {
		hs.Known = &k
	}
	d.Trace.handshake(th, hs, nil)
	var accepted agentauth.Offered
	if offered := h.ids.Offered(); err == nil && tr.signed >= 0 && tr.signed < len(offered) {
		accepted = offered[tr.signed]
	}
	d.Trace.authenticated(th, accepted, err, took)
}

func (d *Dialer) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// lifeline holds what one dial opened, to close it all when the target's
// connection ends, and why the connection was given up on.
type lifeline struct {
	// conn is the target's connection; its writes open the gate of a
	// session started without waiting for the server's reply.
	conn *watchedConn

	mu      sync.Mutex
	closers []func()
	closed  bool
	cause   error
}

func (l *lifeline) add(f func()) {
	l.mu.Lock()
	if !l.closed {
		l.closers = append(l.closers, f)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	f()
}

// close runs the closers, the last opened first.
func (l *lifeline) close() {
	l.mu.Lock()
	fs := l.closers
	l.closers, l.closed = nil, true
	l.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// lose records why the connection is being given up on; the first cause
// wins.
func (l *lifeline) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause == nil {
		l.cause = err
	}
}

// err is why the connection was given up on, nil when it was not.
func (l *lifeline) err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

// watchedConn notes when bytes last arrived: any traffic from the peer
// proves it alive, not only keepalive replies.
type watchedConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
	next atomic.Pointer[chan struct{}]
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *watchedConn) touch() { c.last.Store(time.Now().UnixNano()) }

// Write tells a waiter of nextWrite once a write is done: one atomic swap
// per write when nobody waits.
func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if w := c.next.Swap(nil); w != nil {
		close(*w)
	}
	return n, err
}

// nextWrite returns a channel closed when the next write to the
// connection is done. x/crypto writes each SSH packet in one write, in the
// order the packets were sent, so a packet sent after the one that closes
// it goes after it on the wire. A nil conn has no writes to watch: its
// channel never closes.
func (c *watchedConn) nextWrite() <-chan struct{} {
	w := make(chan struct{})
	if c != nil {
		c.next.Store(&w)
	}
	return w
}

func (c *watchedConn) lastRead() time.Time { return time.Unix(0, c.last.Load()) }

// TimeoutError is a connect or handshake that did not finish within the
// connect timeout.
type TimeoutError struct {
	After time.Duration
	Stage string // "connect" or "handshake"
}

func (e *TimeoutError) Error() string {
	if e.Stage == "handshake" {
		return fmt.Sprintf("Connection timed out during the SSH handshake (after %s)", e.After)
	}
	return fmt.Sprintf("Connection timed out (after %s)", e.After)
}

func (e *TimeoutError) Timeout() bool { return true }

func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// DialError is a failure to reach a target: the TCP connect, or the SSH
// handshake and authentication.
type DialError struct {
	Alias string
	Addr  string
	Stage string // "connect" or "handshake"
	// JumpFor is the alias of the host that Alias is a jump host for;
	// empty when Alias is the target itself.
	JumpFor string
	// Via is the jump host the connection went through, or
	// "ProxyCommand"; empty for a direct connection.
	Via string
	Err error
}

func (e *DialError) Error() string {
	msg := e.Err.Error()
	switch {
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		// OpenSSH's wording, which users search for.
		msg = "Connection refused"
	case e.openFailed() != nil:
		msg = e.openFailed().Message
		if msg == "" {
			msg = e.openFailed().Reason.String()
		}
	}
	msg = strings.TrimPrefix(msg, "ssh: handshake failed: ")
	who := e.Alias
	if e.JumpFor != "" {
		who = "jump host " + e.Alias
	}
	where := e.Addr
	if e.Via != "" {
		where += " via " + e.Via
	}
	verb := "log in"
	var pe *ProxyError
	if e.Stage == "connect" || errors.Is(e.Err, context.DeadlineExceeded) || errors.As(e.Err, &pe) {
		verb = "connect"
	}
	s := fmt.Sprintf("cannot %s to %s (%s)", verb, who, where)
	if e.JumpFor != "" {
		s += " on the way to " + e.JumpFor
	}
	return s + ": " + msg
}

func (e *DialError) Unwrap() error { return e.Err }

// openFailed is the jump host's refusal to open a channel to Addr.
func (e *DialError) openFailed() *ssh.OpenChannelError {
	var oc *ssh.OpenChannelError
	if errors.As(e.Err, &oc) {
		return oc
	}
	return nil
}

// Hint says what to do; errors from agentauth bring their own hints, which
// errors.As finds first.
func (e *DialError) Hint() string {
	if h := verdict.Hint(e.Err); h != "" {
		return h
	}
	resolve := e.Alias
	if e.JumpFor != "" {
		resolve = e.JumpFor
	}
	switch oc := e.openFailed(); {
	case oc != nil && oc.Reason == ssh.Prohibited:
		return fmt.Sprintf("jump host %s does not allow forwarding: it needs 'AllowTcpForwarding yes' in its sshd_config", e.Via)
	case oc != nil:
		return fmt.Sprintf("jump host %s could not reach %s: check HostName and Port as the jump host sees them ('m2m-ssh resolve %s')", e.Via, e.Addr, resolve)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("nothing listens at %s: check that sshd runs there and that HostName and Port are right ('m2m-ssh resolve %s')", e.Addr, resolve)
	case errors.Is(e.Err, context.DeadlineExceeded), isTimeout(e.Err):
		if e.JumpFor != "" {
			return fmt.Sprintf("jump host %s (%s) did not answer in time: check the network path and firewall, or raise ConnectTimeout in its Host block (-o options do not apply to jump hosts)", e.Alias, e.Addr)
		}
		return fmt.Sprintf("%s (%s) did not answer in time: check the network path and firewall, or raise ConnectTimeout", e.Alias, e.Addr)
	case isDNS(e.Err):
		return fmt.Sprintf("the host name does not resolve: check HostName for %s ('m2m-ssh resolve %s')", e.Alias, resolve)
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
