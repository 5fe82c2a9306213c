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

// Methods the bridge knows: the handshake it replays on a new connection,
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

// handshake records how the host opened its session, so that a new
// connection can be opened the same way without the host seeing it: the
// handshake requests the server answered with a result (server/discover,
// initialize), in order, and notifications/initialized.
type handshake struct {
	mu          sync.Mutex
	asked       map[string]step // sent, not yet answered, by id
	steps       []step
	initialized []byte
	waiting     atomic.Int32 // len(asked), read by the pump without the lock
}

// step is one handshake request as the host sent it; id aliases frame.
type step struct {
	method string
	frame  []byte
	id     []byte
}

// ask records a handshake request on its way to the server. frame is owned
// by the bridge and not changed afterwards.
func (h *handshake) ask(env jsonrpc.Envelope, frame []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.asked == nil {
		h.asked = make(map[string]step)
	}
	h.asked[jsonrpc.IDKey(env.ID)] = step{string(env.Method), frame, env.ID}
	h.waiting.Store(int32(len(h.asked)))
}

// answered notes the server's response to id, when id is a handshake
// request's. A request answered with an error is not part of the session:
// a client that probes with server/discover and falls back to initialize
// used initialize alone.
func (h *handshake) answered(id []byte, isError bool) {
	if h.waiting.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	key := jsonrpc.IDKey(id)
	s, ok := h.asked[key]
	if !ok {
		return
	}
	delete(h.asked, key)
	h.waiting.Store(int32(len(h.asked)))
	if isError {
		return
	}
	// A method asked again (a client negotiating the protocol version)
	// counts with its last answer.
	for i := range h.steps {
		if h.steps[i].method == s.method {
			h.steps = append(h.steps[:i], h.steps[i+1:]...)
			break
		}
	}
	h.steps = append(h.steps, s)
}

// notified records notifications/initialized.
func (h *handshake) notified(frame []byte) {
	h.mu.Lock()
	h.initialized = frame
	h.mu.Unlock()
}

// lost forgets handshake requests that were in flight on a lost
// connection: they were answered with an error.
func (h *handshake) lost() {
	h.mu.Lock()
	h.asked = nil
	h.waiting.Store(0)
	h.mu.Unlock()
}

// script is what a new connection replays: each request with an id of
// m2m-ssh's own, whose response is swallowed, then notifications/initialized.
func (h *handshake) script() replay {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r replay
	for i, s := range h.steps {
		id := strconv.AppendQuote(nil, fmt.Sprintf("m2m-ssh-replay-%d", i+1))
		r.requests = append(r.requests, replayed{s.method, id, endLine(jsonrpc.SpliceID(s.frame, s.id, id))})
	}
	if h.initialized != nil {
		r.initialized = endLine(bytes.Clone(h.initialized))
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

// handshakeResult reads what the bridge needs from a replayed request's
// response: the error, or the capabilities that announce list changes.
func handshakeResult(frame []byte) (changed []string, err error) {
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

// cancelledID is the id of the request a notifications/cancelled frame
// cancels, or nil.
func cancelledID(frame []byte) []byte {
	var m struct {
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	if json.Unmarshal(frame, &m) != nil {
		return nil
	}
	return m.Params.RequestID
}
