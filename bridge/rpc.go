package bridge

import (
	"encoding/json"
	"sync"
)

// JSON-RPC error codes m2m-ssh answers with on the server's behalf.
const (
	// CodeParseError answers a frame from the host that is not JSON.
	CodeParseError = -32700
	// CodeUnavailable answers a request that the remote server could not
	// be asked, or whose answer was lost with the connection: the
	// message says which, and whether the request may have run.
	CodeUnavailable = -32000
)

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// errorFrame is a JSON-RPC error response to id (raw JSON; nil for null),
// ending in '\n'.
func errorFrame(id []byte, code int, message string, data any) []byte {
	if id == nil {
		id = []byte("null")
	}
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, rpcError{code, message, data}})
	if err != nil {
		// Only an id that is not JSON gets here; the frame it came
		// from was checked, so this is a bug.
		panic("bridge: cannot encode error response: " + err.Error())
	}
	return append(b, '\n')
}

// inflight is the set of the host's requests the remote has not answered,
// by raw id.
type inflight struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (f *inflight) add(id []byte) {
	f.mu.Lock()
	if f.ids == nil {
		f.ids = make(map[string]struct{})
	}
	f.ids[string(id)] = struct{}{}
	f.mu.Unlock()
}

func (f *inflight) done(id []byte) {
	f.mu.Lock()
	delete(f.ids, string(id))
	f.mu.Unlock()
}

// drain removes and returns every id still waiting.
func (f *inflight) drain() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([][]byte, 0, len(f.ids))
	for id := range f.ids {
		ids = append(ids, []byte(id))
	}
	f.ids = nil
	return ids
}

// hostWriter writes whole frames to the host, one at a time, from the
// remote pump and from the bridge's own answers.
type hostWriter struct {
	mu  sync.Mutex
	w   interface{ Write([]byte) (int, error) }
	err error
}

// frame writes one frame, which ends in '\n'. After the first failure
// (the host has gone) it keeps returning that error.
func (h *hostWriter) frame(b []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	_, h.err = h.w.Write(b)
	return h.err
}
