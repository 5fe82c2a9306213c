package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"
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
	ids    *agentauth.Identities // the target's
	failed bool
	// saidIdentities is set once the identities step failed: the login
	// that follows fails for that reason, said already.
	saidIdentities bool
	// riding is whether the session goes through a master.
	riding bool
	// plan says how m2m-ssh would start a master of its own for the
	// target; "" when it would not.
	plan string
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
	if h := verdict.Hint(err); h != "" {
		fmt.Fprintf(d.out, "    hint: %s\n", h)
	}
}

func (d *doctor) run(ctx context.Context) {
	s := d.s
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		d.fail("config", configError(err, s.opts.ConfigFile))
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

	d.plan = masterPlan(t)
	switch {
	case t.ControlPath != "" && !t.ControlMaster.Rides() && d.plan != "":
		d.note("master", "ControlMaster "+t.ControlMaster.String()+": "+d.plan+"; doctor connects directly")
	case t.ControlPath != "" && !t.ControlMaster.Rides():
		d.note("master", "ControlMaster "+t.ControlMaster.String()+" asks to start a master at "+t.ControlPath+", which m2m-ssh does not: it connects directly")
	}

	// The bridge's own way of connecting, traced: the master it would
	// ride, or every hop it would reach directly.
	var ids *agentauth.Identities
	defer func() {
		if ids != nil {
			ids.Close()
		}
	}()
	sh := &transport.Sharing{Target: t, Program: p, Logger: s.opts.Logger, Trace: d.trace(),
		Direct: func(ctx context.Context) (*transport.Dialer, error) {
			// AllowNone: having no identity is reported in its place,
			// after the host key (trace), as the bridge's login says it.
			idOpts := agentauth.IdentityOptions{Passphrase: s.passphrase, Logger: s.opts.Logger, AllowNone: true}
			var err error
			if ids, err = agentauth.LoadIdentities(t, idOpts); err != nil {
				d.fail("identities", err)
				return nil, err
			}
			d.ids = ids
			ho := agentauth.HostKeyOptions{Logger: s.opts.Logger}
			hk, err := agentauth.NewHostKeyChecker(t, ho)
			if err != nil {
				d.fail("known_hosts", err)
				return nil, err
			}
			return s.newDialer(t, ids, hk, idOpts, ho), nil
		}}
	remote, err := sh.Connect(ctx)
	if err == nil {
		// The session is returned before the server answers its
		// request; the channel step waits for the answer.
		if err = transport.Started(remote); err != nil {
			remote.Close()
		}
	}
	var ce *transport.ChannelError
	switch {
	case err != nil && errors.As(err, &ce):
		d.fail("channel", err)
		return
	case err != nil:
		if !d.failed {
			d.fail("connect", err)
		}
		return
	}
	defer remote.Close()
	how := " accepted"
	if d.riding {
		how += " through the shared connection at " + t.ControlPath + " (no identities or host keys of m2m-ssh's own needed)"
	}
	d.pass("channel", p.String()+how)
	d.initialize(ctx, t, remote, p)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// initialize speaks MCP to the remote program: initialize, then
// tools/list when it has tools. Lines on its stdout that are not
// JSON-RPC (a banner from a shell start-up file) fail their own step.
func (d *doctor) initialize(ctx context.Context, t *sshcfg.Target, remote transport.Remote, p transport.Program) {
	ctx, cancel := context.WithTimeout(ctx, mcpTimeout)
	defer cancel()
	// A login shell given JSON-RPC lines says so on stderr at once
	// ("command not found"): then there is no need to wait for an
	// answer that cannot come.
	ctx, shellFailed := context.WithCancelCause(ctx)
	defer shellFailed(nil)
	var stderr tailBuffer
	if p.Subsystem == "" && p.Command == "" {
		stderr.onShellError = func() { shellFailed(errNoCommand) }
	}
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
		if errors.Is(context.Cause(ctx), errNoCommand) {
			d.fail("MCP initialize", hinted{errNoCommand, fmt.Sprintf("the login shell on %s read the JSON-RPC lines as commands: give the MCP server's command (m2m-ssh doctor %s -- /path/to/mcp-server), or set RemoteCommand for %s in %s", t.Alias, t.Alias, t.Alias, orUserConfig(t.Trace().UserFile))}, details...)
			return
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
		{"logging", c.Logging != nil}, //lint:ignore SA1019 doctor reports what the server offers, deprecated or not
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
		fr := jsonrpc.NewFrameReader(r)
		for {
			frame, err := fr.Next()
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := jsonrpc.ParseEnvelope(frame); err != nil {
				f.mu.Lock()
				f.count++
				if len(f.lines) < 3 {
					f.lines = append(f.lines, jsonrpc.Preview(frame))
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

// remoteWriter is the remote's stdin; closing it sends EOF.
type remoteWriter struct{ transport.Remote }

func (w remoteWriter) Close() error { return w.Remote.CloseWrite() }

// errNoCommand is a shell started where an MCP server was meant; the
// bridge recognises it the same way.
var errNoCommand = stderrlines.ErrNoCommand

// tailSize is how much of the remote's stderr doctor keeps: the last
// lines say why it ended.
const tailSize = 2048

// tailBuffer keeps the last tailSize bytes written to it, and calls
// onShellError once when they show a shell's error.
type tailBuffer struct {
	mu           sync.Mutex
	b            []byte
	onShellError func()
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = t.b[len(t.b)-tailSize:]
	}
	if t.onShellError != nil {
		if stderrlines.ShellError(t.b) {
			t.onShellError()
			t.onShellError = nil
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
