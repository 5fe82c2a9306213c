package bridge

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"golang.org/x/crypto/ssh"
)

// bound is how long a test waits for something that must happen; reaching
// it is a failure (a hang), never a way to wait.
const bound = 20 * time.Second

// longBound is bound for what takes long however well it goes: frames of
// many MiB, thousands of requests. Under the race detector on a loaded
// machine a transfer of 8 MiB each way has taken over 30 s.
const longBound = 3 * time.Minute

// responder is a small JSON-RPC server run inside the in-process SSH
// server. It reads lines with its own code, not the bridge's.
//
//	echo     -> result {"params": params}
//	big      -> result {"text": sshtest.Blob(params.size)}
//	digest   -> result {"len": n, "sha256": hex} of params.text
//	hang     -> no answer
//	exit     -> ends the program with params.code
func responder(banner string) sshtest.Program {
	return func(kind, arg string, ch ssh.Channel) int {
		if banner != "" {
			io.WriteString(ch, banner)
		}
		r := bufio.NewReader(ch)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return 0
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Params json.RawMessage `json:"params"`
			}
			if err := json.Unmarshal(line, &req); err != nil || req.ID == nil {
				continue
			}
			var p struct {
				Size int    `json:"size"`
				Code int    `json:"code"`
				Text string `json:"text"`
			}
			json.Unmarshal(req.Params, &p)
			var result any
			switch req.Method {
			case "echo":
				result = map[string]any{"params": req.Params}
			case "whoami":
				result = map[string]string{"kind": kind, "arg": arg}
			case "big":
				result = map[string]string{"text": sshtest.Blob(p.Size)}
			case "digest":
				result = map[string]any{"len": len(p.Text), "sha256": fmt.Sprintf("%x", sha256.Sum256([]byte(p.Text)))}
			case "hang":
				continue
			case "exit":
				return p.Code
			}
			b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
			b = append(b, '\n')
			switch req.Method {
			case "trailing":
				// Blank lines after the answer, in the same write.
				b = append(b, "\n \r\n"...)
			case "burst":
				// Several answers in one write.
				for i := range p.Size {
					b = fmt.Appendf(b, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"n":%d}}`+"\n", i)
				}
			}
			ch.Write(b)
		}
	}
}

// host plays the MCP host: it writes frames to the bridge's stdin and
// reads its stdout.
type host struct {
	t      *testing.T
	in     *io.PipeWriter
	lines  chan []byte
	result chan runResult
}

type runResult struct {
	code int
	err  error
}

func startBridge(t *testing.T, b *Bridge) *host {
	t.Helper()
	return startBridgeCtx(t, context.Background(), b)
}

// startBridgeCtx is startBridge with a context the test cancels, as a
// signal does.
func startBridgeCtx(t *testing.T, ctx context.Context, b *Bridge) *host {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &host{t: t, in: inW, lines: make(chan []byte, 1024), result: make(chan runResult, 1)}
	go func() {
		code, err := b.Run(ctx, inR, outW)
		outW.Close()
		h.result <- runResult{code, err}
	}()
	go func() {
		r := bufio.NewReaderSize(outR, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				h.lines <- line
			}
			if err != nil {
				close(h.lines)
				return
			}
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return h
}

func (h *host) send(frame string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, frame+"\n"); err != nil {
		h.t.Fatalf("write to the bridge: %v", err)
	}
}

// recv returns the next frame the bridge wrote to stdout, decoded.
func (h *host) recv() map[string]any {
	h.t.Helper()
	return h.recvWithin(bound)
}

// recvWithin is recv that waits up to d.
func (h *host) recvWithin(d time.Duration) map[string]any {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			h.t.Fatal("the bridge closed stdout")
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			h.t.Fatalf("the bridge wrote a frame that is not JSON: %.100q", line)
		}
		return m
	case <-time.After(d):
		h.t.Fatalf("no frame from the bridge within %s", d)
	}
	return nil
}

func (h *host) wait() runResult {
	h.t.Helper()
	select {
	case r := <-h.result:
		return r
	case <-time.After(bound):
		h.t.Fatal("the bridge did not end")
	}
	return runResult{}
}

func inProcess(t *testing.T, cfg sshtest.ServerConfig, p transport.Program) (*sshtest.Server, transport.Connect) {
	srv := sshtest.StartServer(t, cfg)
	return srv, func(ctx context.Context) (transport.Remote, error) {
		c, err := srv.Dial()
		if err != nil {
			return nil, err
		}
		return transport.Start(c, p)
	}
}

func TestBridgeRoundTrip(t *testing.T) {
	for _, p := range []transport.Program{{}, {Command: "mcp-server --stdio"}, {Subsystem: "mcp"}} {
		t.Run(p.String(), func(t *testing.T) {
			_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, p)
			h := startBridge(t, &Bridge{Name: "test", Connect: connect})
			h.send(`{"jsonrpc":"2.0","id":1,"method":"whoami"}`)
			h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			h.send(`{"jsonrpc":"2.0","id":"two","method":"echo","params":{"s":"é\u2028✓"}}`)
			r1 := h.recv()
			want := map[string]any{"kind": "shell", "arg": ""}
			if p.Command != "" {
				want = map[string]any{"kind": "exec", "arg": p.Command}
			} else if p.Subsystem != "" {
				want = map[string]any{"kind": "subsystem", "arg": p.Subsystem}
			}
			if fmt.Sprint(r1["result"]) != fmt.Sprint(want) || r1["id"] != 1.0 {
				t.Fatalf("whoami = %v, want result %v", r1, want)
			}
			r2 := h.recv()
			if r2["id"] != "two" || fmt.Sprint(r2["result"]) != fmt.Sprint(map[string]any{"params": map[string]any{"s": "é\u2028✓"}}) {
				t.Fatalf("echo = %v", r2)
			}
			h.in.Close()
			if r := h.wait(); r.code != 0 || r.err != nil {
				t.Fatalf("Run = %d, %v; want 0, nil", r.code, r.err)
			}
		})
	}
}

// TestBridgeLargeFrames sends 32 MiB each way and checks every byte (8 MiB
// under the race detector, which makes each byte ten times as slow).
func TestBridgeLargeFrames(t *testing.T) {
	size := 32 << 20
	if raceEnabled {
		size = 8 << 20
	}
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	h := startBridge(t, &Bridge{Name: "test", Connect: connect})

	blob := sshtest.Blob(size)
	arg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "digest", "params": map[string]string{"text": blob}})
	h.send(string(arg))
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"big","params":{"size":%d}}`, size))

	r := h.recvWithin(longBound)
	res := r["result"].(map[string]any)
	if res["len"] != float64(size) || res["sha256"] != fmt.Sprintf("%x", sha256.Sum256([]byte(blob))) {
		t.Fatalf("the remote received a different frame: %v", res)
	}
	r = h.recvWithin(longBound)
	if text := r["result"].(map[string]any)["text"].(string); text != blob {
		t.Fatalf("the host received a different result (%d bytes, want %d)", len(text), size)
	}
}

func TestBridgeConnectFailure(t *testing.T) {
	failure := &transport.DialError{Alias: "buildbox", Addr: "127.0.0.1:1", Stage: "connect", Err: errors.New("connect: connection refused")}
	h := startBridge(t, &Bridge{Name: "buildbox", Connect: func(context.Context) (transport.Remote, error) { return nil, failure }})
	// A client probes with server/discover and falls back to initialize
	// once the first has failed: each gets the error.
	for id, method := range []string{"server/discover", "initialize"} {
		h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{}}`, id, method))
		r := h.recv()
		e, _ := r["error"].(map[string]any)
		if r["id"] != float64(id) || e == nil || e["code"] != float64(CodeUnavailable) {
			t.Fatalf("response = %v, want error %d for id %d", r, CodeUnavailable, id)
		}
		if msg := e["message"].(string); !strings.Contains(msg, "buildbox") || !strings.Contains(msg, "cannot connect") {
			t.Fatalf("message %q does not say what failed", msg)
		}
	}
	if res := h.wait(); res.code != ExitStatus || !errors.Is(res.err, failure) {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
}

// A failure with no request from the host ends the bridge after the grace.
func TestBridgeConnectFailureWithoutRequest(t *testing.T) {
	failure := errors.New("nope")
	h := startBridge(t, &Bridge{Name: "x", FailGrace: time.Millisecond, Connect: func(context.Context) (transport.Remote, error) { return nil, failure }})
	if res := h.wait(); res.code != ExitStatus || res.err != failure {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
}

// With reconnecting off, a remote that exits ends the bridge with its
// status.
func TestBridgeRemoteExit(t *testing.T) {
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	h := startBridge(t, &Bridge{Name: "test", Connect: connect, Retries: -1, FailGrace: 10 * time.Millisecond})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	h.recv()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"hang"}`)
	h.send(`{"jsonrpc":"2.0","id":3,"method":"exit","params":{"code":3}}`)
	got := map[float64]bool{}
	for range 2 {
		r := h.recv()
		e, _ := r["error"].(map[string]any)
		if e == nil || e["code"] != float64(CodeConnectionLost) || !strings.Contains(e["message"].(string), "exited with status 3") {
			t.Fatalf("response = %v, want an error saying the server exited with status 3", r)
		}
		got[r["id"].(float64)] = true
	}
	if !got[2] || !got[3] {
		t.Fatalf("answered ids %v, want 2 and 3", got)
	}
	if res := h.wait(); res.code != 3 {
		t.Fatalf("Run = %d, %v; want the remote's status 3", res.code, res.err)
	}
}

func TestBridgeConnectionDrop(t *testing.T) {
	srv, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	h := startBridge(t, &Bridge{Name: "test", Connect: connect, ExitWait: time.Second, Retries: -1, FailGrace: 10 * time.Millisecond})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	h.recv()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"hang"}`)
	// The hang request must have reached the server before the cut, or
	// it would be answered as "not sent"; an echo behind it proves it.
	h.send(`{"jsonrpc":"2.0","id":3,"method":"echo"}`)
	h.recv()
	srv.Drop()
	r := h.recv()
	e, _ := r["error"].(map[string]any)
	if r["id"] != 2.0 || e == nil || e["code"] != float64(CodeConnectionLost) || !strings.Contains(e["message"].(string), "connection to test was lost") {
		t.Fatalf("response = %v, want a lost-connection error for id 2", r)
	}
	if res := h.wait(); res.code != ExitStatus {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
}

func TestBridgeHostEOFWaitsForAnswers(t *testing.T) {
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	h := startBridge(t, &Bridge{Name: "test", Connect: connect})
	for i := range 50 {
		h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo"}`, i))
	}
	h.in.Close()
	for i := range 50 {
		if r := h.recv(); r["id"] != float64(i) {
			t.Fatalf("response %d has id %v: frames reordered or lost", i, r["id"])
		}
	}
	if res := h.wait(); res.code != 0 || res.err != nil {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
}

// Frames that arrive together reach the host in one write, but nothing is
// held back once the remote has no whole frame waiting, blank lines
// included.
func TestBridgeFlushesBursts(t *testing.T) {
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	h := startBridge(t, &Bridge{Name: "test", Connect: connect})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"trailing"}`)
	if r := h.recv(); r["id"] != 1.0 {
		t.Fatalf("response = %v, want the answer to 1", r)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"burst","params":{"size":50}}`)
	if r := h.recv(); r["id"] != 2.0 {
		t.Fatalf("response = %v, want the answer to 2", r)
	}
	for i := range 50 {
		r := h.recv()
		if p, _ := r["params"].(map[string]any); p == nil || p["n"] != float64(i) {
			t.Fatalf("frame %d of the burst = %v", i, r)
		}
	}
}

func TestBridgeDropsNonJSONFromRemote(t *testing.T) {
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("Welcome to buildbox!\nLast login: never\n")}, transport.Program{})
	var log sshtest.Buffer
	h := startBridge(t, &Bridge{Name: "test", Connect: connect, Logger: newTestLogger(&log)})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	if r := h.recv(); r["id"] != 1.0 {
		t.Fatalf("first frame = %v, want the echo response", r)
	}
	if !strings.Contains(log.String(), "Welcome to buildbox") || !strings.Contains(log.String(), "start-up files") {
		t.Fatalf("log does not name the stray output and its likely cause:\n%s", log.String())
	}
}

func TestBridgeParseErrorFromHost(t *testing.T) {
	_, connect := inProcess(t, sshtest.ServerConfig{Run: responder("")}, transport.Program{})
	var log sshtest.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := startBridge(t, &Bridge{Name: "test", Connect: connect, Logger: logger})
	h.send(`{"jsonrpc":"2.0","id":1,"method":"login","params":{"token":"s3cr3t"`)
	r := h.recv()
	e, _ := r["error"].(map[string]any)
	if r["id"] != nil || e == nil || e["code"] != float64(CodeParseError) {
		t.Fatalf("response = %v, want a parse error with id null", r)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"echo"}`)
	if r := h.recv(); r["id"] != 2.0 || r["result"] == nil {
		t.Fatalf("response = %v, want the echo for id 2", r)
	}
	// The broken frame's text may hold secrets: it stays out of the log
	// at INFO, which still says what happened.
	if got := log.String(); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "not JSON") {
		t.Fatalf("INFO log = %q, want the event without the frame's text", got)
	}
}

func TestBridgeRemoteStderr(t *testing.T) {
	prog := func(kind, arg string, ch ssh.Channel) int {
		io.WriteString(ch.Stderr(), "starting up\nready")
		return responder("")(kind, arg, ch)
	}
	_, connect := inProcess(t, sshtest.ServerConfig{Run: prog}, transport.Program{})
	var stderr sshtest.Buffer
	h := startBridge(t, &Bridge{Name: "test", Connect: connect, Stderr: &stderr})
	h.in.Close()
	h.wait()
	want := "m2m-ssh: remote: starting up\nm2m-ssh: remote: ready\n"
	if stderr.String() != want {
		t.Fatalf("stderr = %q, want %q", stderr.String(), want)
	}
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
