package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"golang.org/x/crypto/ssh"
)

// mcpServer is a small MCP server run inside the in-process SSH server,
// strict about the greeting as real servers are: until it has seen
// initialize and notifications/initialized (or server/discover), it answers
// every other request with an error. It logs what each connection received.
//
//	initialize, server/discover -> result with tools.listChanged
//	echo  -> result {"params": params, "conn": n}
//	hang  -> no answer
//	exit  -> ends the program with params.code
//	ask   -> asks the host roots/list, answers with the host's answer
type mcpServer struct {
	noDiscover bool // answer server/discover with "method not found"
	// crashFrom ends this connection and every one after it at once,
	// with status 7 (0: never).
	crashFrom int32

	halfDone chan struct{} // receives once "half" has written its half

	conns atomic.Int32
	mu    sync.Mutex
	log   []string // "conn method params" for each message received
}

func (s *mcpServer) record(conn int32, what string) {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf("%d %s", conn, what))
	s.mu.Unlock()
}

// received is what connection conn received, in order.
func (s *mcpServer) received(conn int32) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var got []string
	prefix := fmt.Sprintf("%d ", conn)
	for _, l := range s.log {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			got = append(got, rest)
		}
	}
	return got
}

type rpcMsg struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *jsonrpc.Error  `json:"error,omitempty"`
}

func (s *mcpServer) program() sshtest.Program {
	return func(kind, arg string, ch ssh.Channel) int {
		conn := s.conns.Add(1)
		if s.crashFrom > 0 && conn >= s.crashFrom {
			io.WriteString(ch.Stderr(), "fatal: cannot start\n")
			return 7
		}
		var wmu sync.Mutex
		write := func(v any) {
			b, _ := json.Marshal(v)
			wmu.Lock()
			ch.Write(append(b, '\n'))
			wmu.Unlock()
		}
		result := func(id json.RawMessage, result any) any {
			return map[string]any{"jsonrpc": "2.0", "id": id, "result": result}
		}
		fail := func(id json.RawMessage, code int, msg string) any {
			return map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}}
		}
		caps := map[string]any{"tools": map[string]any{"listChanged": true}}
		ready := false
		asks := map[string]json.RawMessage{} // our request id -> the ask it serves
		next := 0
		exit := -1
		// handle returns the response to m, or nil.
		handle := func(m rpcMsg) any {
			if m.Method == "" {
				s.record(conn, "response "+string(m.ID)+" "+string(m.Result))
				if ask, ok := asks[string(m.ID)]; ok {
					delete(asks, string(m.ID))
					return result(ask, map[string]any{"roots": m.Result, "conn": conn})
				}
				return nil
			}
			s.record(conn, m.Method+" "+string(m.Params))
			if m.ID == nil {
				if m.Method == methodInitialized {
					ready = true
				}
				return nil
			}
			switch {
			case m.Method == methodInitialize:
				return result(m.ID, map[string]any{"protocolVersion": "2025-06-18", "capabilities": caps, "serverInfo": map[string]any{"name": "mcpServer"}})
			case m.Method == methodDiscover && s.noDiscover:
				return fail(m.ID, -32601, "method not found")
			case m.Method == methodDiscover:
				ready = true
				return result(m.ID, map[string]any{"supportedVersions": []string{"2026-07-28"}, "capabilities": caps})
			case !ready:
				return fail(m.ID, -32002, "not initialized")
			case m.Method == "echo":
				return result(m.ID, map[string]any{"params": m.Params, "conn": conn})
			case m.Method == "hang":
			case m.Method == "half":
				// The first half of a response, as a cut leaves it.
				wmu.Lock()
				fmt.Fprintf(ch, `{"jsonrpc":"2.0","id":%s,"result":{"text":"cut he`, m.ID)
				wmu.Unlock()
				s.halfDone <- struct{}{}
			case m.Method == "exit":
				var p struct{ Code int }
				json.Unmarshal(m.Params, &p)
				exit = p.Code
			case m.Method == "ask":
				next++
				id := json.RawMessage(fmt.Sprint(next))
				asks[string(id)] = m.ID
				write(map[string]any{"jsonrpc": "2.0", "id": id, "method": "roots/list"})
			default:
				return fail(m.ID, -32601, "method not found")
			}
			return nil
		}
		r := bufio.NewReader(ch)
		for exit < 0 {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return 0
			}
			var batch []rpcMsg
			if json.Unmarshal(line, &batch) == nil {
				var out []any
				for _, m := range batch {
					if resp := handle(m); resp != nil {
						out = append(out, resp)
					}
				}
				if len(out) > 0 {
					write(out)
				}
				continue
			}
			var m rpcMsg
			if err := json.Unmarshal(line, &m); err != nil {
				s.record(conn, "invalid "+string(line))
				continue
			}
			if resp := handle(m); resp != nil {
				write(resp)
			}
		}
		return exit
	}
}

// fastRetry is reconnecting quick enough for tests.
func fastRetry(b *Bridge) *Bridge {
	b.BackoffMin, b.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	b.FailGrace = 50 * time.Millisecond
	return b
}

// recvID returns the next frame, which must answer id (raw JSON).
func (h *host) recvID(id string) map[string]any {
	h.t.Helper()
	m := h.recv()
	if got, _ := json.Marshal(m["id"]); string(got) != id {
		h.t.Fatalf("frame = %v, want the response to id %s", m, id)
	}
	return m
}

func errorOf(m map[string]any) (code float64, msg string) {
	e, _ := m["error"].(map[string]any)
	if e == nil {
		return 0, ""
	}
	return e["code"].(float64), e["message"].(string)
}

const initParams = `{"protocolVersion":"2025-06-18","capabilities":{"roots":{}},"clientInfo":{"name":"host","version":"1"}}`

// initialize performs the host's greeting.
func (h *host) initialize() {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":` + initParams + `}`)
	if r := h.recvID("0"); r["result"] == nil {
		h.t.Fatalf("initialize = %v", r)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// echo sends an echo request and checks that it succeeds within 2 s.
func (h *host) echo(id int) map[string]any {
	h.t.Helper()
	start := time.Now()
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo","params":{"n":%d}}`, id, id))
	r := h.recvID(fmt.Sprint(id))
	if r["result"] == nil {
		h.t.Fatalf("echo %d = %v, want a result", id, r)
	}
	if d := time.Since(start); d > 2*time.Second {
		h.t.Fatalf("echo %d took %s", id, d)
	}
	return r
}

// sync sends an echo that proves every frame sent before it has reached
// the server.
func (h *host) sync(id int) { h.t.Helper(); h.echo(id) }

// cut drops the connection and returns once the bridge has seen it go:
// a request in flight (id) is answered.
func (h *host) cut(srv *sshtest.Server, id int) {
	h.t.Helper()
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"hang"}`, id))
	h.sync(id + 1)
	srv.Drop()
	if code, _ := errorOf(h.recvID(fmt.Sprint(id))); code != CodeConnectionLost {
		h.t.Fatalf("request %d in flight answered with code %v, want %d", id, code, CodeConnectionLost)
	}
}

// listChanged expects the notification a restored session brings.
func (h *host) listChanged() {
	h.t.Helper()
	if n := h.recv(); n["method"] != "notifications/tools/list_changed" || n["id"] != nil {
		h.t.Fatalf("frame = %v, want notifications/tools/list_changed", n)
	}
}

func TestReconnectReplaysInitialize(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect}))
	h.initialize()
	h.echo(1)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"hang"}`)
	h.sync(3)

	ssrv.Drop()
	code, msg := errorOf(h.recvID("2"))
	if code != CodeConnectionLost || !strings.Contains(msg, "connection to box was lost") || !strings.Contains(msg, "may or may not have run") {
		t.Fatalf("hang answered with %v %q; want %d saying the connection to box was lost", code, msg, CodeConnectionLost)
	}
	// The cancellation of a lost request is not sent to the new server.
	h.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`)
	start := time.Now()
	h.send(`{"jsonrpc":"2.0","id":4,"method":"echo","params":{"n":4}}`)
	// The new server advertises tools.listChanged: the host is told, as
	// soon as the session is back, before any answer on it.
	if n := h.recv(); n["method"] != "notifications/tools/list_changed" || n["id"] != nil {
		t.Fatalf("frame = %v, want notifications/tools/list_changed", n)
	}
	r := h.recvID("4")
	if r["result"].(map[string]any)["conn"] != 2.0 || time.Since(start) > 2*time.Second {
		t.Fatalf("echo 4 = %v after %s, want it served by the second connection", r, time.Since(start))
	}
	want := []string{"initialize " + initParams, methodInitialized + " ", `echo {"n":4}`}
	if got := srv.received(2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the second connection received\n%q\nwant\n%q", got, want)
	}
	h.in.Close()
	if res := h.wait(); res.code != 0 || res.err != nil {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
}

// The replay repeats the greeting the session used: server/discover when
// the server took it, initialize when the host fell back to it.
func TestReconnectReplaysGreetingUsed(t *testing.T) {
	const discoverParams = `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`
	tests := []struct {
		name       string
		noDiscover bool
		want       []string // what the second connection receives
	}{
		{"discover", false, []string{methodDiscover + " " + discoverParams, `echo {"n":3}`}},
		{"fallback to initialize", true, []string{"initialize " + initParams, methodInitialized + " ", `echo {"n":3}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &mcpServer{noDiscover: tt.noDiscover}
			ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
			h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect}))
			h.send(`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":` + discoverParams + `}`)
			if r := h.recvID("1"); (r["error"] != nil) != tt.noDiscover {
				t.Fatalf("server/discover = %v", r)
			}
			if tt.noDiscover {
				h.initialize()
			}
			h.cut(ssrv, 10)
			h.send(`{"jsonrpc":"2.0","id":3,"method":"echo","params":{"n":3}}`)
			h.listChanged()
			if r := h.recvID("3"); r["result"] == nil {
				t.Fatalf("echo after the cut = %v", r)
			}
			if got := srv.received(2); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("the second connection received\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// The server's requests to the host die with their connection: the host
// is told to stop, its late answer is dropped, and the next connection's
// requests get ids the host cannot confuse with them.
func TestReconnectForgetsServerRequests(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect}))
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"ask"}`)
	q := h.recv()
	if q["method"] != "roots/list" || q["id"] != 1.0 {
		t.Fatalf("frame = %v, want the server's roots/list request with id 1", q)
	}
	ssrv.Drop()
	got := map[string]map[string]any{}
	for range 2 {
		m := h.recv()
		got[fmt.Sprintf("%v|%v", m["method"], m["id"])] = m
	}
	if code, _ := errorOf(got["<nil>|1"]); code != CodeConnectionLost {
		t.Fatalf("ask answered with %v, want error %d", got["<nil>|1"], CodeConnectionLost)
	}
	cancel := got["notifications/cancelled|<nil>"]
	if cancel == nil || cancel["params"].(map[string]any)["requestId"] != 1.0 {
		t.Fatalf("frames %v lack notifications/cancelled for the server's request 1", got)
	}
	// The host's late answer, which the new server could take for the
	// answer to its own request 1.
	h.send(`{"jsonrpc":"2.0","id":1,"result":{"roots":["late"]}}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ask"}`)
	h.listChanged()
	q = h.recv()
	id, _ := q["id"].(string)
	if q["method"] != "roots/list" || id == "" {
		t.Fatalf("frame = %v, want roots/list with an id of m2m-ssh's", q)
	}
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"result":{"roots":["fresh"]}}`, id))
	r := h.recvID("2")
	if fmt.Sprint(r["result"]) != fmt.Sprint(map[string]any{"roots": map[string]any{"roots": []any{"fresh"}}, "conn": 2.0}) {
		t.Fatalf("ask 2 = %v, want the fresh roots", r)
	}
	for _, l := range srv.received(2) {
		if strings.Contains(l, "late") {
			t.Fatalf("the late answer reached the new connection: %q", srv.received(2))
		}
		if strings.HasPrefix(l, "response ") && l != `response 1 {"roots":["fresh"]}` {
			t.Fatalf("the new connection received %q, want its own id back", l)
		}
	}
}

// gatedConnect connects through connect once open is closed.
func gatedConnect(connect transport.Connect, first *atomic.Bool, open <-chan struct{}) transport.Connect {
	return func(ctx context.Context) (transport.Remote, error) {
		if !first.CompareAndSwap(true, false) {
			select {
			case <-open:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return connect(ctx)
	}
}

// Requests that arrive while the session is being restored wait for it,
// up to ReconnectTimeout; then they are answered, never dropped. A
// notification waits for the session however long it takes.
func TestReconnectQueueExpires(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	var first atomic.Bool
	first.Store(true)
	open := make(chan struct{})
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: gatedConnect(connect, &first, open), ReconnectTimeout: 300 * time.Millisecond}))
	h.initialize()
	h.cut(ssrv, 1)
	start := time.Now()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"echo","params":{"n":2}}`)
	h.send(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"n":"kept"}}`)
	code, msg := errorOf(h.recvID("2"))
	if code != CodeUnavailable || !strings.Contains(msg, "not back after 300ms") || !strings.Contains(msg, "was not sent") {
		t.Fatalf("echo 2 answered with %v %q, want %d after the reconnect timeout", code, msg, CodeUnavailable)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > bound {
		t.Fatalf("echo 2 answered after %s, want after the reconnect timeout", d)
	}
	close(open)
	h.listChanged()
	// Sent once the session is back: the reconnect, which may take
	// longer than the short timeout on a loaded machine, is not raced.
	h.echo(3)
	want := []string{"initialize " + initParams, methodInitialized + " ", `notifications/progress {"n":"kept"}`, `echo {"n":3}`}
	if got := srv.received(2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the second connection received\n%q\nwant\n%q", got, want)
	}
}

// Requests that arrive while the session is being restored are sent, in
// order, once it is back.
func TestReconnectQueue(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	var first atomic.Bool
	first.Store(true)
	open := make(chan struct{})
	// Far longer than a reconnect takes: no request here expires.
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: gatedConnect(connect, &first, open), ReconnectTimeout: longBound}))
	h.initialize()
	h.cut(ssrv, 1)
	h.send(`{"jsonrpc":"2.0","id":3,"method":"echo","params":{"n":3}}`)
	h.send(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"n":"kept"}}`)
	h.send(`{"jsonrpc":"2.0","id":4,"method":"echo","params":{"n":4}}`)
	close(open)
	h.listChanged()
	for _, id := range []string{"3", "4"} {
		if r := h.recvID(id); r["result"] == nil {
			t.Fatalf("echo %s after the reconnect = %v, want a result", id, r)
		}
	}
	want := []string{"initialize " + initParams, methodInitialized + " ", `echo {"n":3}`, `notifications/progress {"n":"kept"}`, `echo {"n":4}`}
	if got := srv.received(2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the second connection received\n%q\nwant\n%q", got, want)
	}
}

// The host closing stdin while the session is being restored ends the
// bridge; what waited is answered.
func TestReconnectHostLeaves(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	var first atomic.Bool
	first.Store(true)
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: gatedConnect(connect, &first, nil)}))
	h.initialize()
	h.cut(ssrv, 10)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	h.in.Close()
	if code, msg := errorOf(h.recvID("1")); code != CodeUnavailable || !strings.Contains(msg, "host closed stdin") {
		t.Fatalf("echo answered with %v %q", code, msg)
	}
	if res := h.wait(); res.code != ExitStatus || res.err == nil {
		t.Fatalf("Run = %d, %v; want %d and an error", res.code, res.err, ExitStatus)
	}
}

// A remote that fails again and again makes the bridge give up after
// Retries tries, with every request answered.
func TestReconnectGivesUp(t *testing.T) {
	tests := []struct {
		name      string
		crashFrom int32
		greeted   bool
	}{
		{"crashes at start", 1, false},
		{"crashes after the first session", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &mcpServer{crashFrom: tt.crashFrom}
			_, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
			var log sshtest.Buffer
			h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect, Retries: 3, Logger: newTestLogger(&log)}))
			if tt.greeted {
				h.initialize()
				h.send(`{"jsonrpc":"2.0","id":1,"method":"exit","params":{"code":1}}`)
			} else {
				h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":` + initParams + `}`)
			}
			// The host keeps asking; each request gets one answer.
			answered := map[string]bool{}
			for id := 1; ; id++ {
				if id > 1 {
					h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"echo"}`, id))
				}
				m := h.recvID(fmt.Sprint(id))
				if m["error"] == nil {
					t.Fatalf("request %d = %v, want an error", id, m)
				}
				answered[fmt.Sprint(id)] = true
				if _, msg := errorOf(m); strings.Contains(msg, "gave up after 3 tries") {
					break
				}
				if id > 100 {
					t.Fatal("the bridge does not give up")
				}
			}
			res := h.wait()
			var re *ReconnectError
			if res.code != ExitStatus || !errors.As(res.err, &re) || re.Tries != 3 {
				t.Fatalf("Run = %d, %v; want %d and a ReconnectError after 3 tries", res.code, res.err, ExitStatus)
			}
			if n := srv.conns.Load(); n > 5 {
				t.Fatalf("%d connections, want at most 1 + 3 tries (+1)", n)
			}
			if !strings.Contains(log.String(), "giving up") {
				t.Fatalf("the log does not say why it gave up:\n%s", log.String())
			}
		})
	}
}

// A verdict that waiting does not change ends the bridge at the first try.
func TestReconnectPermanentFailure(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	var first atomic.Bool
	first.Store(true)
	refused := &transport.DialError{Alias: "box", Addr: ssrv.Addr, Stage: "handshake", Err: hintedErr{"host key mismatch"}}
	tries := 0
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: func(ctx context.Context) (transport.Remote, error) {
		if first.CompareAndSwap(true, false) {
			return connect(ctx)
		}
		tries++
		return nil, refused
	}}))
	h.initialize()
	h.cut(ssrv, 10)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	if code, msg := errorOf(h.recvID("1")); code != CodeUnavailable || !strings.Contains(msg, "host key mismatch") {
		t.Fatalf("echo answered with %v %q", code, msg)
	}
	res := h.wait()
	if !errors.Is(res.err, refused) || tries != 1 {
		t.Fatalf("Run = %d, %v after %d tries; want the refusal after 1", res.code, res.err, tries)
	}
}

type hintedErr struct{ msg string }

func (e hintedErr) Error() string   { return e.msg }
func (e hintedErr) Hint() string    { return "check known_hosts" }
func (e hintedErr) Permanent() bool { return true }

// A failure with a hint is not a verdict: a ProxyCommand that exits while
// the network is down (a laptop that just woke) is tried again with
// backoff, and the session comes back once it works.
func TestReconnectProxyCommandHeals(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	down := &transport.DialError{Alias: "box", Addr: ssrv.Addr, Via: "ProxyCommand", Stage: "handshake",
		Err: &transport.ProxyError{Command: "nc box 22", Err: errors.New("exited with status 1: no route to host")}}
	var calls atomic.Int32
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: func(ctx context.Context) (transport.Remote, error) {
		switch n := calls.Add(1); {
		case n == 1, n >= 5:
			return connect(ctx)
		default:
			return nil, down
		}
	}}))
	h.initialize()
	h.cut(ssrv, 10)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
	h.listChanged()
	if m := h.recvID("1"); m["result"] == nil {
		t.Fatalf("echo after the ProxyCommand healed = %v", m)
	}
	if n := calls.Load(); n != 5 {
		t.Fatalf("%d connects, want 1 + 3 failed + 1", n)
	}
}

// Batches are tracked message by message; the requests of a batch lost
// with the connection are answered as a batch.
func TestReconnectBatch(t *testing.T) {
	srv := &mcpServer{}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect}))
	h.initialize()
	h.send(`[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":1}},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":2,"method":"echo","params":{"n":2}}]`)
	var batch []map[string]any
	select {
	case line := <-h.lines:
		if err := json.Unmarshal(line, &batch); err != nil || len(batch) != 2 || batch[0]["id"] != 1.0 || batch[1]["id"] != 2.0 {
			t.Fatalf("batch response = %s", line)
		}
	case <-time.After(bound):
		t.Fatal("no batch response")
	}
	h.send(`[{"jsonrpc":"2.0","id":3,"method":"hang"},{"jsonrpc":"2.0","id":4,"method":"hang"}]`)
	h.sync(5)
	ssrv.Drop()
	select {
	case line := <-h.lines:
		if err := json.Unmarshal(line, &batch); err != nil || len(batch) != 2 || batch[0]["id"] != 3.0 || batch[1]["id"] != 4.0 {
			t.Fatalf("frame = %s, want a batch of errors for 3 and 4", line)
		}
		if code, _ := errorOf(batch[0]); code != CodeConnectionLost {
			t.Fatalf("frame = %s, want code %d", line, CodeConnectionLost)
		}
	case <-time.After(bound):
		t.Fatal("the lost batch was not answered")
	}
	h.send(`{"jsonrpc":"2.0","id":6,"method":"echo"}`)
	h.listChanged()
	h.recvID("6")
}

// A signal ends the session: EOF to the remote, which ends, and its status.
func TestBridgeCancel(t *testing.T) {
	srv := &mcpServer{}
	_, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	defer inW.Close()
	done := make(chan runResult, 1)
	go func() {
		code, err := (&Bridge{Name: "box", Connect: connect}).Run(ctx, inR, io.Discard)
		done <- runResult{code, err}
	}()
	io.WriteString(inW, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}`+"\n")
	cancel()
	select {
	case res := <-done:
		if res.code != 0 || res.err != nil {
			t.Fatalf("Run = %d, %v; want the remote's status 0", res.code, res.err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not end")
	}
}

// A frame cut short by the loss of its connection never reaches the host:
// its request is answered as lost.
func TestReconnectDropsPartialFrame(t *testing.T) {
	srv := &mcpServer{halfDone: make(chan struct{}, 1)}
	ssrv, connect := inProcess(t, sshtest.ServerConfig{Run: srv.program()}, transport.Program{})
	var log sshtest.Buffer
	h := startBridge(t, fastRetry(&Bridge{Name: "box", Connect: connect, Logger: newTestLogger(&log)}))
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":1,"method":"half"}`)
	<-srv.halfDone
	ssrv.Drop()
	if code, _ := errorOf(h.recvID("1")); code != CodeConnectionLost {
		t.Fatalf("the request whose answer was cut got code %v, want %d", code, CodeConnectionLost)
	}
	if !strings.Contains(log.String(), "in the middle of a frame") {
		t.Fatalf("the log does not tell of the cut frame:\n%s", log.String())
	}
}
