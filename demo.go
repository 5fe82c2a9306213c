package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/demo"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
)

// demoAction starts the demo's SSH server and reaches it through the same
// resolution, authentication, host key check and bridge as any host: as
// if 'm2m-ssh -F CONFIG m2m-demo' had been run. An MCP host gets the
// session; a person at a terminal gets a walkthrough of one.
func demoAction(c *cli.Context) error {
	walk := c.Bool("walkthrough") || isTerminal(c.App.Reader)
	if walk && !c.IsSet("log-level") {
		// The walkthrough says what the INFO lines would.
		c.Set("log-level", "WARNING")
	}
	logger, err := newLogger(c)
	if err != nil {
		return usageError(err)
	}
	if c.NArg() > 0 {
		return usageError(errors.New("demo takes no arguments"))
	}
	h, err := demo.Start(logger)
	if err != nil {
		return err
	}
	defer h.Close()
	s := &session{alias: demo.Alias, opts: sshcfg.Options{ConfigFile: h.ConfigFile, Logger: logger}}

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if walk {
		return walkthrough(ctx, c.App.Writer, h, s, logger)
	}
	b := &bridge.Bridge{Name: demo.Alias, Connect: s.connector(logger), Logger: logger, Stderr: logWriter(c)}
	start := time.Now()
	code, err := b.Run(ctx, c.App.Reader, c.App.Writer)
	logger.Info("disconnected", "target", demo.Alias, "after", time.Since(start).Round(time.Millisecond), "status", code)
	return &exitError{code: code, err: err, answered: true}
}

// walkthrough plays an MCP host against the demo, through the bridge, and
// says what happened at each step.
func walkthrough(ctx context.Context, out io.Writer, h *demo.Host, s *session, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p := &printer{w: out}
	fmt.Fprintf(out, "m2m-ssh demo: an SSH server on %s runs an MCP server; m2m-ssh reaches it\n", h.Addr)
	fmt.Fprintf(out, "as it reaches any host: ssh config, key, known_hosts, session channel.\n\n")

	// The host's side of stdio: what it writes to m2m-ssh's stdin and
	// reads from its stdout.
	toBridge, hostOut := io.Pipe()
	hostIn, fromBridge := io.Pipe()
	connected := make(chan error, 1)
	inner := s.connector(logger)
	b := &bridge.Bridge{
		Name:   demo.Alias,
		Logger: logger,
		Connect: func(ctx context.Context) (transport.Remote, error) {
			r, err := inner(ctx)
			connected <- err
			return r, err
		},
	}
	type result struct {
		code int
		err  error
	}
	ran := make(chan result, 1)
	start := time.Now()
	go func() {
		code, err := b.Run(ctx, toBridge, fromBridge)
		fromBridge.Close()
		ran <- result{code, err}
	}()

	if err := <-connected; err != nil {
		p.fail("ssh", err.Error(), time.Since(start))
		hostOut.Close()
		<-ran
		return &exitError{code: 1, err: err}
	}
	p.ok("ssh", fmt.Sprintf("logged in to %s as %s; host key %s matched known_hosts", h.Addr, demo.User, ssh.FingerprintSHA256(h.HostKey)), time.Since(start))

	t := time.Now()
	client := mcp.NewClient(&mcp.Implementation{Name: "m2m-ssh-walkthrough", Version: buildVersion()}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: hostIn, Writer: hostOut}, nil)
	if err != nil {
		p.fail("initialize", err.Error(), time.Since(t))
		hostOut.Close()
		<-ran
		return &exitError{code: 1, err: err}
	}
	ir := cs.InitializeResult()
	p.ok("initialize", fmt.Sprintf("%s %s, protocol %s", ir.ServerInfo.Name, ir.ServerInfo.Version, ir.ProtocolVersion), time.Since(t))

	steps := []func() error{
		func() error {
			t := time.Now()
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				p.fail("tools/list", err.Error(), time.Since(t))
				return err
			}
			names := make([]string, len(tools.Tools))
			for i, tool := range tools.Tools {
				names[i] = tool.Name
			}
			p.ok("tools/list", strings.Join(names, ", "), time.Since(t))
			return nil
		},
		func() error { return p.call(ctx, cs, "echo", map[string]any{"text": "hello over SSH"}) },
		func() error { return p.call(ctx, cs, "time", map[string]any{}) },
	}
	var failed error
	for _, step := range steps {
		if failed = step(); failed != nil {
			break
		}
	}

	t = time.Now()
	cs.Close()
	hostOut.Close()
	r := <-ran
	switch {
	case failed != nil:
		return &exitError{code: 1, err: failed}
	case r.err != nil || r.code != 0:
		p.fail("close", fmt.Sprintf("the remote server ended with status %d: %v", r.code, r.err), time.Since(t))
		return &exitError{code: 1, err: r.err}
	}
	p.ok("close", "the host ended the session; the remote server exited with status 0", time.Since(t))
	fmt.Fprintf(out, "\nThat is the whole job. For a host of yours: 'm2m-ssh doctor ALIAS' checks it,\n")
	fmt.Fprintf(out, "'m2m-ssh config ALIAS --for claude' (or %s) prints what to paste.\n", strings.Join(mcpHostNames()[1:], ", "))
	return nil
}

// printer writes the walkthrough's steps, one line each.
type printer struct{ w io.Writer }

func (p *printer) ok(step, what string, took time.Duration) {
	fmt.Fprintf(p.w, "  ✓ %-11s %s (%s)\n", step, what, ms(took))
}

func (p *printer) fail(step, what string, took time.Duration) {
	fmt.Fprintf(p.w, "  ✗ %-11s %s (%s)\n", step, what, ms(took))
}

func (p *printer) call(ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any) error {
	t := time.Now()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err == nil && res.IsError {
		err = fmt.Errorf("the tool reported an error: %s", resultText(res))
	}
	if err != nil {
		p.fail("tools/call", name+": "+err.Error(), time.Since(t))
		return err
	}
	p.ok("tools/call", fmt.Sprintf("%s %s → %q", name, compactJSON(args), resultText(res)), time.Since(t))
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func compactJSON(args map[string]any) string {
	b, _ := json.Marshal(args)
	return string(b)
}

// ms rounds a duration for people: 3.2ms, 41ms, 1.2s.
func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
