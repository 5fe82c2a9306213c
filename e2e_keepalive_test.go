//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// watchedTransport tells sent of every message the client has written to
// m2m-ssh's stdin, once written, so that a test knows what is in flight.
type watchedTransport struct {
	mcp.Transport
	sent func(jsonrpc.Message)
}

func (t *watchedTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	conn, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &watchedConn{Connection: conn, sent: t.sent}, nil
}

type watchedConn struct {
	mcp.Connection
	sent func(jsonrpc.Message)
}

func (c *watchedConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if err := c.Connection.Write(ctx, msg); err != nil {
		return err
	}
	c.sent(msg)
	return nil
}

// toolCalled reports whether msg is a call of the tool name.
func toolCalled(msg jsonrpc.Message, name string) bool {
	req, ok := msg.(*jsonrpc.Request)
	if !ok || req.Method != "tools/call" {
		return false
	}
	var p struct{ Name string }
	return json.Unmarshal(req.Params, &p) == nil && p.Name == name
}

func echoText(t *testing.T, ctx context.Context, s *mcp.ClientSession, text string) {
	t.Helper()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatalf("echo %q: %v", text, err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != text {
		t.Fatalf("echo = %q, want %q", got, text)
	}
}

// A path that goes silent without closing, as a NAT that forgot the flow
// does, is found dead by the keepalives within ServerAliveInterval ×
// ServerAliveCountMax: the call in flight is answered as lost, and once
// the path is back the session is restored on one new connection.
func TestEndToEndBlackHole(t *testing.T) {
	const (
		interval = time.Second
		count    = 2
		silence  = interval * count
	)
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := w.command(w.viaRelay(t, relay, filepath.Join(w.dir, "testmcp.pid"),
		"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2")...)
	sleepSent := make(chan struct{}, 1)
	transport := &watchedTransport{
		Transport: &mcp.CommandTransport{Command: cmd},
		sent: func(msg jsonrpc.Message) {
			if toolCalled(msg, "sleep") {
				sleepSent <- struct{}{}
			}
		},
	}
	start := time.Now()
	s, err := connectThrough(t, ctx, cmd, transport)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	startup := time.Since(start)
	defer s.Close()
	echoText(t, ctx, s, "before")

	before := relay.Accepted()
	slept := make(chan error, 1)
	go func() {
		_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"millis": 60000}})
		slept <- err
	}()
	select {
	case <-sleepSent:
	case <-ctx.Done():
		t.Fatal("the client did not send the sleep call")
	}
	// The answer to a call sent after the sleep proves that the sleep
	// reached the server (frames arrive in order). That the keepalives
	// declare the path dead no sooner than they allow is transport's
	// rule, proven by transport.TestKeeper.
	echoText(t, ctx, s, "behind the sleep")
	relay.BlackHole()
	holed := time.Now()

	bound := silence + 2*time.Second + startup
	var lost error
	select {
	case lost = <-slept:
	case <-time.After(bound):
		t.Fatalf("the call in flight was not answered within %s of the path going silent", bound)
	}
	answered := time.Now()
	took := answered.Sub(holed)
	t.Logf("first connect and start took %s; the lost call was answered %s after the path went silent (bound %s)",
		startup.Round(time.Millisecond), took.Round(time.Millisecond), bound.Round(time.Millisecond))
	var je *jsonrpc.Error
	if !errors.As(lost, &je) || je.Code != bridge.CodeConnectionLost {
		t.Fatalf("the call in flight ended with %v; want a JSON-RPC error %d", lost, bridge.CodeConnectionLost)
	}
	if !strings.Contains(je.Message, "connection to buildbox was lost") || !strings.Contains(je.Message, "may or may not have run") {
		t.Fatalf("message %q does not say what happened", je.Message)
	}

	relay.Restore()
	restored := time.Now()
	back := backBound(t, startup)
	echoText(t, ctx, s, "after")
	if d := time.Since(restored); d > back {
		t.Fatalf("the call after the path came back took %s; want at most %s", d, back)
	}
	t.Logf("the call after the path came back took %s", time.Since(restored).Round(time.Millisecond))
	if n := relay.Accepted() - before; n != 1 {
		t.Fatalf("%d connections since the path went silent, want 1", n)
	}

	s.Close()
	log := stderrOf(cmd)
	for _, want := range []string{"ServerAliveInterval 1s × ServerAliveCountMax 2", "the connection is dead", "reconnected"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log lacks %q:\n%s", want, log)
		}
	}
}

// stderrOf is what m2m-ssh wrote to stderr, once it has exited.
func stderrOf(cmd *exec.Cmd) string {
	return fmt.Sprint(cmd.Stderr)
}

// A path that is silent from the start fails the first connect after
// ConnectTimeout: the host's initialize gets an error naming the timeout,
// and m2m-ssh exits non-zero.
func TestEndToEndConnectTimeout(t *testing.T) {
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	relay.BlackHole()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := w.command(w.viaRelay(t, relay, filepath.Join(w.dir, "testmcp.pid"), "-o", "ConnectTimeout=1")...)
	// How soon it fails is transport's rule, bounded both ways by
	// transport.TestDialErrors; here only what the host is told, and the
	// exit (ctx is the hang guard).
	start := time.Now()
	_, err := connect(t, ctx, cmd)
	t.Logf("initialize failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("connected through a silent path")
	}
	if !strings.Contains(err.Error(), "Connection timed out during the SSH handshake (after 1s)") {
		t.Fatalf("the host saw %q; want it to name the timeout", err)
	}
	if st := cmd.ProcessState; st == nil || st.ExitCode() <= 0 {
		t.Fatalf("m2m-ssh exited with %v; want a non-zero status", st)
	}
	log := stderrOf(cmd)
	if !strings.Contains(log, "m2m-ssh: error: ") || !strings.Contains(log, "m2m-ssh: hint: ") || !strings.Contains(log, "ConnectTimeout") {
		t.Fatalf("stderr lacks the error and a hint naming ConnectTimeout:\n%s", log)
	}
	// The silence was the relay's: m2m-ssh reached it, once.
	if n := relay.Accepted(); n != 1 {
		t.Fatalf("the relay accepted %d connections, want 1", n)
	}
}
