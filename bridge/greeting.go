package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// Methods the bridge knows: the greeting it replays on a new connection,
// and the notifications it reads or writes itself. Any other method passes
// through untouched.
const (
	methodInitialize  = "initialize"
	methodDiscover    = "server/discover" // protocol 2026-07-28: stateless, no initialize
	methodInitialized = "notifications/initialized"
	methodCancelled   = "notifications/cancelled"
)

// listChanged are the notifications that tell the host to fetch a list
// again, by the capability that announces them.
var listChanged = [...]struct{ capability, method string }{
	{"tools", "notifications/tools/list_changed"},
	{"prompts", "notifications/prompts/list_changed"},
	{"resources", "notifications/resources/list_changed"},
}

// greeting records how the host opened its MCP session (MCP calls it the
// initialization phase; it is not the SSH handshake), so that a new
// connection can be opened the same way without the host seeing it: the
// greeting requests the server answered with a result (server/discover,
// initialize), in order, and notifications/initialized.
type greeting struct {
	mu          sync.Mutex
	asked       map[string]step // sent, not yet answered, by id
	steps       []step
	initialized []byte
	waiting     atomic.Int32 // len(asked), read by the pump without the lock
}

// step is one greeting request as the host sent it; id aliases frame.
type step struct {
	method string
	frame  []byte
	id     []byte
}

// ask records a greeting request on its way to the server. frame is owned
// by the bridge and not changed afterwards.
func (g *greeting) ask(env jsonrpc.Envelope, frame []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.asked == nil {
		g.asked = make(map[string]step)
	}
	g.asked[jsonrpc.IDKey(env.ID)] = step{string(env.Method), frame, env.ID}
	g.waiting.Store(int32(len(g.asked)))
}

// answered notes the server's response to id, when id is a greeting
// request's. A request answered with an error is not part of the session:
// a client that probes with server/discover and falls back to initialize
// used initialize alone.
func (g *greeting) answered(id []byte, isError bool) {
	if g.waiting.Load() == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := jsonrpc.IDKey(id)
	s, ok := g.asked[key]
	if !ok {
		return
	}
	delete(g.asked, key)
	g.waiting.Store(int32(len(g.asked)))
	if isError {
		return
	}
	// A method asked again (a client negotiating the protocol version)
	// counts with its last answer.
	for i := range g.steps {
		if g.steps[i].method == s.method {
			g.steps = append(g.steps[:i], g.steps[i+1:]...)
			break
		}
	}
	g.steps = append(g.steps, s)
}

// notified records notifications/initialized.
func (g *greeting) notified(frame []byte) {
	g.mu.Lock()
	g.initialized = frame
	g.mu.Unlock()
}

// lost forgets greeting requests that were in flight on a lost
// connection: they were answered with an error.
func (g *greeting) lost() {
	g.mu.Lock()
	g.asked = nil
	g.waiting.Store(0)
	g.mu.Unlock()
}

// script is what a new connection replays: each request with an id of
// m2m-ssh's own, whose response is swallowed, then notifications/initialized.
func (g *greeting) script() replay {
	g.mu.Lock()
	defer g.mu.Unlock()
	var r replay
	for i, s := range g.steps {
		id := strconv.AppendQuote(nil, fmt.Sprintf("m2m-ssh-replay-%d", i+1))
		r.requests = append(r.requests, replayed{s.method, id, endLine(jsonrpc.SpliceID(s.frame, s.id, id))})
	}
	if g.initialized != nil {
		r.initialized = endLine(bytes.Clone(g.initialized))
	}
	return r
}

// endLine makes a message of a batch a frame of its own.
func endLine(msg []byte) []byte {
	if len(msg) == 0 || msg[len(msg)-1] != '\n' {
		msg = append(msg, '\n')
	}
	return msg
}

type replay struct {
	requests    []replayed
	initialized []byte
}

type replayed struct {
	method string
	id     []byte
	frame  []byte
}

func (r replay) empty() bool { return len(r.requests) == 0 && r.initialized == nil }

// greetingResult reads what the bridge needs from a replayed request's
// response: the error, or the capabilities that announce list changes.
func greetingResult(frame []byte) (changed []string, err error) {
	var m struct {
		Result *struct {
			Capabilities map[string]struct {
				ListChanged bool `json:"listChanged"`
			} `json:"capabilities"`
		} `json:"result"`
		Error *jsonrpc.Error `json:"error"`
	}
	if err := json.Unmarshal(frame, &m); err != nil {
		return nil, fmt.Errorf("the response is not valid JSON: %w", err)
	}
	if m.Error != nil {
		return nil, fmt.Errorf("the server answered with error %d: %s", m.Error.Code, m.Error.Message)
	}
	if m.Result == nil {
		return nil, fmt.Errorf("the response has no result")
	}
	for _, lc := range listChanged {
		if m.Result.Capabilities[lc.capability].ListChanged {
			changed = append(changed, lc.method)
		}
	}
	return changed, nil
}
