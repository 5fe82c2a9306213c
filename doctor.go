package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
)

// mcpTimeout bounds the wait for the remote server's answer to initialize.
const mcpTimeout = 20 * time.Second

// stderrWait bounds the wait, once initialize has failed, for the rest of
// the remote's stderr.
const stderrWait = time.Second

// doctorAction checks every step of a connection in order and says which
// one fails and what to do about it. It exits 0 only when all pass.
func doctorAction(c *cli.Context) error {
	if !c.IsSet("log-level") {
		// The checks report what INFO lines would; warnings still show.
		c.Set("log-level", "WARNING")
	}
	logger, err := newLogger(c)
	if err != nil {
		return usageError(err)
	}
	if c.NArg() == 0 && !c.IsSet("host") {
		return usageError(errors.New("doctor needs an ALIAS (or --host)"))
	}
	s, err := parseSession(c)
	if err != nil {
		return usageError(err)
	}
	s.opts.Logger = logger
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	d := &doctor{out: c.App.Writer, s: s}
	fmt.Fprintf(d.out, "m2m-ssh doctor %s\n", s.alias)
	d.run(ctx)
	if d.failed {
		fmt.Fprintln(d.out, "a check failed: fix it and run m2m-ssh doctor again")
		return &exitError{code: 1}
	}
	fmt.Fprintln(d.out, "all checks passed")
	return nil
}

// doctor runs the checks and prints one line per step, ✓ or ✗, with
// details indented below it.
type doctor struct {
	out    io.Writer
	s      *session
	failed bool
}

func (d *doctor) pass(step, what string, details ...string) {
	fmt.Fprintf(d.out, "✓ %s: %s\n", step, what)
	for _, l := range details {
		fmt.Fprintf(d.out, "    %s\n", l)
	}
}

func (d *doctor) note(step, what string) {
	fmt.Fprintf(d.out, "· %s: %s\n", step, what)
}

// fail prints the step's error and its hint.
func (d *doctor) fail(step string, err error, details ...string) {
	d.failed = true
	fmt.Fprintf(d.out, "✗ %s: %v\n", step, err)
	for _, l := range details {
		fmt.Fprintf(d.out, "    %s\n", l)
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(d.out, "    hint: %s\n", h.Hint())
	}
}

func (d *doctor) run(ctx context.Context) {
	s := d.s
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		d.fail("config", err)
		return
	}
	p := s.program
	if p.Subsystem == "" && p.Command == "" {
		p.Command = t.RemoteCommand
	}
	tr := t.Trace()
	details := []string{"files read: " + orNone(strings.Join(tr.Files, ", "))}
	for _, b := range tr.Blocks {
		details = append(details, "applied "+b)
	}
	d.pass("config", fmt.Sprintf("%s is %s@%s, to run %s", t.Alias, t.User, t.Addr(), p), details...)

	timeout := t.ConnectTimeout
	if timeout <= 0 {
		timeout = bridge.DefaultConnectTimeout
	}
	var via string
	switch {
	case t.ProxyJump != "":
		via = "ProxyJump " + t.ProxyJump
	case t.ProxyCommand != "" && !strings.EqualFold(t.ProxyCommand, "none"):
		via = "ProxyCommand " + t.ProxyCommand
	}

	ids, err := agentauth.LoadIdentities(t, agentauth.IdentityOptions{Passphrase: s.passphrase, Logger: s.opts.Logger})
	if err != nil {
		d.fail("identities", err)
		return
	}
	defer ids.Close()
	hk, err := agentauth.NewHostKeyChecker(t, agentauth.HostKeyOptions{Logger: s.opts.Logger})
	if err != nil {
		d.fail("known_hosts", err)
		return
	}

	var client *ssh.Client
	if via != "" {
		d.note("DNS", "left to the hops")
		d.note("TCP connect", "left to the hops")
		d.note("proxy", "via "+via+" (the hops are not checked one by one)")
		client = d.dialProxied(ctx, &bridge.Dialer{Target: t, Identities: ids, HostKeys: hk})
	} else {
		conn := d.connect(ctx, t, timeout)
		if conn == nil {
			return
		}
		d.note("proxy", "none: a direct connection")
		client = d.handshake(ctx, t, conn, ids, hk, timeout)
	}
	if client == nil {
		return
	}
	defer client.Close()

	remote, err := bridge.Start(client, p)
	if err != nil {
		d.fail("channel", &bridge.ChannelError{Alias: t.Alias, Program: p, Err: err})
		return
	}
	defer remote.Close()
	d.pass("channel", p.String()+" accepted")
	d.initialize(ctx, t, remote)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// connect checks the name and the TCP connect; nil when either fails.
func (d *doctor) connect(ctx context.Context, t *sshcfg.Target, timeout time.Duration) net.Conn {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := t.Addr()
	if _, err := netip.ParseAddr(t.HostName); err == nil {
		d.pass("DNS", t.HostName+" is an address")
	} else {
		start := time.Now()
		addrs, err := net.DefaultResolver.LookupHost(ctx, t.HostName)
		if err != nil {
			d.fail("DNS", &bridge.DialError{Alias: t.Alias, Addr: addr, Stage: "connect", Err: err})
			return nil
		}
		d.pass("DNS", fmt.Sprintf("%s is %s (%s)", t.HostName, strings.Join(addrs, ", "), ms(time.Since(start))))
	}
	start := time.Now()
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		d.fail("TCP connect", &bridge.DialError{Alias: t.Alias, Addr: addr, Stage: "connect", Err: err})
		return nil
	}
	d.pass("TCP connect", fmt.Sprintf("%s in %s", conn.RemoteAddr(), ms(time.Since(start))))
	return conn
}

// handshake runs the SSH handshake and authentication on conn as
// bridge.Dialer does, telling them apart and recording what the server
// said, which host key line matched and which identity it accepted.
func (d *doctor) handshake(ctx context.Context, t *sshcfg.Target, conn net.Conn, ids *agentauth.Identities, hk *agentauth.HostKeyChecker, timeout time.Duration) *ssh.Client {
	vc := &versionConn{Conn: conn}
	conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var hostKey ssh.PublicKey
	var hostKeyErr error
	rec := &signRecorder{last: -1}
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{rec.method(ids.Signers())},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			hostKey = key
			hostKeyErr = hk.Check(key)
			return hostKeyErr
		},
		HostKeyAlgorithms: hk.Algorithms(),
		ClientVersion:     "SSH-2.0-" + bridge.Version,
	}
	start := time.Now()
	c, chans, reqs, err := ssh.NewClientConn(vc, t.Addr(), cfg)
	took := time.Since(start)
	if err != nil {
		conn.Close()
	}
	switch {
	case hostKey == nil:
		if v := vc.serverLine(); v != "" && !strings.HasPrefix(v, "SSH-") {
			err = fmt.Errorf("%s does not speak SSH; it said %q", t.Addr(), v)
			d.fail("SSH handshake", hinted{err, "something else listens on that port: check Port ('m2m-ssh resolve " + t.Alias + "')"})
			return nil
		}
		if ctx.Err() != nil || isTimeoutErr(err) {
			err = fmt.Errorf("%w (after %s)", context.DeadlineExceeded, timeout)
		}
		d.fail("SSH handshake", &bridge.DialError{Alias: t.Alias, Addr: t.Addr(), Stage: "handshake", Err: err})
		return nil
	case hostKeyErr != nil:
		d.fail("SSH handshake", hostKeyErr, "server "+vc.serverLine())
		return nil
	}
	fp := hostKey.Type() + " " + ssh.FingerprintSHA256(hostKey)
	matched := "accepted without a known_hosts line (StrictHostKeyChecking " + t.StrictHostKeyChecking + ")"
	if k, ok := hk.Trusted(hostKey); ok {
		matched = fmt.Sprintf("matched %s:%d", k.File, k.Line)
	}
	d.pass("SSH handshake", fmt.Sprintf("%s, host key %s %s", vc.serverLine(), fp, matched))
	if err != nil {
		d.fail("authentication", &bridge.DialError{Alias: t.Alias, Addr: t.Addr(), Stage: "handshake", Err: ids.AuthError(err)})
		return nil
	}
	conn.SetDeadline(time.Time{})
	offered := ids.Offered()
	who := "an identity"
	if rec.last >= 0 && rec.last < len(offered) {
		o := offered[rec.last]
		who = fmt.Sprintf("%s %s from %s", o.Type, o.Fingerprint, o.Source)
	}
	d.pass("authentication", fmt.Sprintf("%s accepted %s as %s (%s)", t.Alias, who, t.User, ms(took)))
	return ssh.NewClient(c, chans, reqs)
}

// dialProxied dials through the target's hops with the bridge's own
// dialer, which reports the handshake and authentication together.
func (d *doctor) dialProxied(ctx context.Context, dl *bridge.Dialer) *ssh.Client {
	start := time.Now()
	c, err := dl.Dial(ctx)
	if err != nil {
		var ae *agentauth.AuthError
		if errors.As(err, &ae) {
			d.pass("SSH handshake", "host key verified")
			d.fail("authentication", err)
		} else {
			d.fail("SSH handshake", err)
		}
		return nil
	}
	d.pass("SSH handshake", string(c.ServerVersion())+", host key verified")
	d.pass("authentication", fmt.Sprintf("logged in as %s (%s)", dl.Target.User, ms(time.Since(start))))
	return c
}

// initialize speaks MCP to the remote program: initialize, then
// tools/list when it has tools. Lines on its stdout that are not
// JSON-RPC (a banner from a shell start-up file) fail their own step.
func (d *doctor) initialize(ctx context.Context, t *sshcfg.Target, remote bridge.Remote) {
	ctx, cancel := context.WithTimeout(ctx, mcpTimeout)
	defer cancel()
	var stderr tailBuffer
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		io.Copy(&stderr, remote.Stderr())
	}()
	f := newFrameFilter(remote)

	start := time.Now()
	client := mcp.NewClient(&mcp.Implementation{Name: "m2m-ssh-doctor", Version: buildVersion()}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: f, Writer: remoteWriter{remote}}, nil)
	var tools int
	if err == nil && cs.InitializeResult().Capabilities.Tools != nil {
		var res *mcp.ListToolsResult
		if res, err = cs.ListTools(ctx, nil); err == nil {
			tools = len(res.Tools)
		}
	}
	took := time.Since(start)

	if junk := f.junk(); len(junk) > 0 {
		d.fail("stdout", fmt.Errorf("the remote printed %d line(s) that are not JSON-RPC before or between its answers, first %q", f.junkCount(), junk[0]),
			"m2m-ssh drops such lines, but they slow every start and a longer banner can break a client")
		fmt.Fprintf(d.out, "    hint: a shell start-up file (.bashrc, .profile) or motd prints to stdout: make it quiet for non-interactive shells, e.g. put '[ -z \"$PS1\" ] && return' at the top of ~/.bashrc on %s\n", t.HostName)
	} else if err == nil {
		d.pass("stdout", "only JSON-RPC")
	}
	if err != nil {
		// The remote's stderr arrives on its own stream: the lines it
		// printed before it ended may still be on their way when its
		// stdout ends. Its EOF comes with the channel's.
		select {
		case <-stderrDone:
		case <-time.After(stderrWait):
		}
		var details []string
		if e := strings.TrimSpace(stderr.String()); e != "" {
			details = append(details, "remote stderr: "+e)
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer to initialize within %s", mcpTimeout)
		}
		d.fail("MCP initialize", hinted{fmt.Errorf("%v", err), "the remote program must be an MCP server on stdio: run it by hand on the server and check that it answers a JSON-RPC initialize line"}, details...)
		return
	}
	defer cs.Close()
	ir := cs.InitializeResult()
	d.pass("MCP initialize", fmt.Sprintf("%s %s, protocol %s (%s)", ir.ServerInfo.Name, ir.ServerInfo.Version, ir.ProtocolVersion, ms(took)),
		"capabilities: "+capabilities(ir.Capabilities), fmt.Sprintf("tools: %d", tools))
}

func capabilities(c *mcp.ServerCapabilities) string {
	if c == nil {
		return "none"
	}
	var names []string
	for _, x := range []struct {
		name string
		on   bool
	}{
		{"completions", c.Completions != nil},
		{"logging", c.Logging != nil},
		{"prompts", c.Prompts != nil},
		{"resources", c.Resources != nil},
		{"tools", c.Tools != nil},
	} {
		if x.on {
			names = append(names, x.name)
		}
	}
	return orNone(strings.Join(names, ", "))
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// versionConn keeps the first bytes the server sends: its version line,
// or whatever a server that is not SSH says.
type versionConn struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *versionConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if room := 512 - len(c.first); room > 0 {
		c.first = append(c.first, p[:min(n, room)]...)
	}
	c.mu.Unlock()
	return n, err
}

// serverLine is the server's version line, or its first line when it
// sent none.
func (c *versionConn) serverLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := strings.Split(string(c.first), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "SSH-") {
			return strings.TrimRight(l, "\r")
		}
	}
	return strings.TrimSpace(lines[0])
}

// signRecorder notes which signer the server let sign: x/crypto asks the
// server whether it would accept a key before signing with it, so the
// last signer used is the one that logged in.
type signRecorder struct{ last int }

func (r *signRecorder) method(signers []ssh.Signer) ssh.AuthMethod {
	wrapped := make([]ssh.Signer, len(signers))
	for i, s := range signers {
		wrapped[i] = r.wrap(i, s)
	}
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return wrapped, nil })
}

// wrap keeps the algorithm interfaces of s, which x/crypto uses to pick
// rsa-sha2 signatures.
func (r *signRecorder) wrap(i int, s ssh.Signer) ssh.Signer {
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return &recordSigner{Signer: s, note: func() { r.last = i }}
	}
	a := &recordAlgoSigner{AlgorithmSigner: as, note: func() { r.last = i }}
	if ms, ok := s.(ssh.MultiAlgorithmSigner); ok {
		return &recordMultiSigner{recordAlgoSigner: a, algos: ms.Algorithms()}
	}
	return a
}

type recordSigner struct {
	ssh.Signer
	note func()
}

func (s *recordSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.note()
	return s.Signer.Sign(rand, data)
}

type recordAlgoSigner struct {
	ssh.AlgorithmSigner
	note func()
}

func (s *recordAlgoSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.note()
	return s.AlgorithmSigner.Sign(rand, data)
}

func (s *recordAlgoSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s.note()
	return s.AlgorithmSigner.SignWithAlgorithm(rand, data, algorithm)
}

type recordMultiSigner struct {
	*recordAlgoSigner
	algos []string
}

func (s *recordMultiSigner) Algorithms() []string { return s.algos }

// frameFilter passes the remote's JSON-RPC lines on and keeps the others.
type frameFilter struct {
	pr *io.PipeReader

	mu    sync.Mutex
	lines []string
	count int
}

func newFrameFilter(r io.Reader) *frameFilter {
	pr, pw := io.Pipe()
	f := &frameFilter{pr: pr}
	go func() {
		fr := bridge.NewFrameReader(r)
		for {
			frame, err := fr.Next()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := bridge.ParseEnvelope(frame); err != nil {
				f.mu.Lock()
				f.count++
				if len(f.lines) < 3 {
					f.lines = append(f.lines, preview(frame))
				}
				f.mu.Unlock()
				continue
			}
			if _, err := pw.Write(frame); err != nil {
				return
			}
		}
	}()
	return f
}

func (f *frameFilter) Read(p []byte) (int, error) { return f.pr.Read(p) }
func (f *frameFilter) Close() error               { return f.pr.Close() }

func (f *frameFilter) junk() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

func (f *frameFilter) junkCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func preview(b []byte) string {
	b = bytes.TrimRight(b, "\r\n")
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// remoteWriter is the remote's stdin; closing it sends EOF.
type remoteWriter struct{ bridge.Remote }

func (w remoteWriter) Close() error { return w.Remote.CloseWrite() }

// tailBuffer keeps the last 2 KiB written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
