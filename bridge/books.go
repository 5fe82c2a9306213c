package bridge

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// books are what one host session has in flight, across the connections
// that carry it: the host's requests the remote has not answered, the
// remote's requests the host has not answered, the batches sent, and the
// greeting to replay. Every frame each way goes on them before it is
// passed on; toRemote and remoteMessage say what to pass on. The session
// and its links read and change them only through the methods here.
type books struct {
	log      *slog.Logger
	pending  inflight       // the host's requests the remote has not answered
	server   serverRequests // the remote's requests the host has not answered
	greeting greeting       // how the host opened its session, to replay
	batches  uint64         // batches sent; under the live sender's lock
	unasked  atomic.Bool    // an answer to no request in flight was logged
}

// toRemote puts one host frame on the books and returns the bytes to send,
// or nil when the frame is dropped: an answer to a request of a lost
// connection, or the cancellation of a request that is not in flight.
func (bk *books) toRemote(f hostFrame) []byte {
	if f.env.Kind != jsonrpc.KindBatch {
		msg, changed := bk.hostMessage(f.env, f.data, 0)
		if changed && msg != nil {
			msg = append(msg, '\n')
		}
		return msg
	}
	bk.batches++
	elems := make([][]byte, 0, len(f.elems))
	edited := false
	for _, e := range f.elems {
		msg, changed := bk.hostMessage(e.env, e.raw, bk.batches)
		edited = edited || changed
		if msg != nil {
			elems = append(elems, msg)
		}
	}
	switch {
	case !edited:
		return f.data
	case len(elems) == 0:
		return nil
	}
	return jsonrpc.JoinBatch(elems)
}

// hostMessage handles one message from the host; changed reports that the
// bytes returned are not msg as it came (which for a frame ends in '\n').
func (bk *books) hostMessage(env jsonrpc.Envelope, msg []byte, batch uint64) (out []byte, changed bool) {
	switch env.Kind {
	case jsonrpc.KindRequest:
		bk.pending.add(env.ID, batch)
		switch string(env.Method) {
		case methodInitialize, methodDiscover:
			bk.greeting.ask(env, msg)
		}
	case jsonrpc.KindNotification:
		switch string(env.Method) {
		case methodInitialized:
			bk.greeting.notified(msg)
		case methodCancelled:
			// The server never saw a request lost with a connection,
			// or has answered it already.
			if id := cancelledID(msg); id == nil || !bk.pending.has(id) {
				bk.log.Debug("dropped a cancellation of a request not in flight", "id", string(id))
				return nil, true
			}
		}
	case jsonrpc.KindResponse:
		remoteID, ok := bk.server.answer(env.ID)
		if !ok {
			bk.log.Debug("dropped the host's answer to a request of a lost connection", "id", string(env.ID))
			return nil, true
		}
		if remoteID != nil {
			return bytes.TrimSuffix(jsonrpc.SpliceID(msg, env.ID, remoteID), []byte("\n")), true
		}
	}
	return msg, false
}

// remoteBatch puts each message of a batch from the remote on the books,
// and gives its requests the ids the host is to see. It returns nil when
// no message is left to pass on.
func (bk *books) remoteBatch(frame []byte, refuse func(jsonrpc.Envelope)) []byte {
	elems, err := jsonrpc.Elements(frame)
	if err != nil {
		return frame
	}
	edited := false
	kept := elems[:0]
	for _, e := range elems {
		env, err := jsonrpc.ParseEnvelope(e)
		if err != nil {
			kept = append(kept, e)
			continue
		}
		msg, changed := bk.remoteMessage(env, e, refuse)
		edited = edited || changed
		if msg != nil {
			kept = append(kept, msg)
		}
	}
	switch {
	case !edited:
		return frame
	case len(kept) == 0:
		return nil
	}
	return jsonrpc.JoinBatch(kept)
}

// remoteMessage puts one message from the remote on the books: a response
// ends a request in flight, a request from the server gets the id the host
// is to see. changed reports that the bytes returned are not msg; nil
// means the message is not passed on: a second answer to a request, or a
// request refused (with refuse) because too many wait for the host.
func (bk *books) remoteMessage(env jsonrpc.Envelope, msg []byte, refuse func(jsonrpc.Envelope)) (out []byte, changed bool) {
	switch env.Kind {
	case jsonrpc.KindResponse:
		// An answer to no request in flight (a second answer, or one
		// to an id the host never sent) would break the promise of
		// exactly one answer each; an error with id null is the
		// server's word on a frame it could not read, and goes on.
		if string(env.ID) != "null" && !bk.pending.done(env.ID) {
			level := slog.LevelDebug
			if bk.unasked.CompareAndSwap(false, true) {
				level = slog.LevelWarn
			}
			bk.log.Log(context.Background(), level, "the remote answered a request that is not in flight; dropped the answer", "id", string(env.ID))
			return nil, true
		}
		bk.greeting.answered(env.ID, env.Error)
	case jsonrpc.KindRequest:
		bk.refusals(bk.server.settle())
		id, ok := bk.server.add(env.ID)
		if !ok {
			refuse(env)
			return nil, true
		}
		if id != nil {
			return jsonrpc.SpliceID(msg, env.ID, id), true
		}
	}
	return msg, false
}

// refusals logs how many of the server's requests were refused while the
// table was full, once it has room again or the link ends.
func (bk *books) refusals(n int) {
	if n > 0 {
		bk.log.Warn("refused requests from the remote while too many waited for the host", "refused", n, "limit", maxServerRequests)
	}
}

// refused is how many of the server's requests were refused since the
// table last had room.
func (bk *books) refused() int { return bk.server.refused() }

// failed takes a request whose answer from the remote could not be passed
// on off the books, and reports whether it was in flight (and is to be
// answered with an error). A greeting request so answered is not replayed.
func (bk *books) failed(id []byte) bool {
	if !bk.pending.done(id) {
		return false
	}
	bk.greeting.answered(id, true)
	return true
}

// unanswered takes every host request in flight off the books, to be
// answered by m2m-ssh, in the order sent (see inflight.drain).
func (bk *books) unanswered() [][][]byte { return bk.pending.drain() }

// lost forgets what was in flight on a lost connection from the server's
// side: greeting requests not yet answered, and the server's requests,
// whose ids as the host saw them it returns.
func (bk *books) lost() [][]byte {
	bk.greeting.lost()
	return bk.server.forget()
}

// script is what a new connection replays.
func (bk *books) script() replay { return bk.greeting.script() }

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

// inflight is the set of the host's requests the remote has not answered,
// by id (jsonrpc.IDKey: a server may spell the id it echoes its own
// way), with the order they were sent in and the batch they came in.
type inflight struct {
	mu  sync.Mutex
	seq uint64
	ids map[string]sent
}

type sent struct {
	id    string // as the host spelt it, for the answers m2m-ssh makes
	seq   uint64
	batch uint64 // 0 when the request came alone
}

func (f *inflight) add(id []byte, batch uint64) {
	f.mu.Lock()
	if f.ids == nil {
		f.ids = make(map[string]sent)
	}
	f.seq++
	f.ids[jsonrpc.IDKey(id)] = sent{string(id), f.seq, batch}
	f.mu.Unlock()
}

// done takes id off the books, and reports whether it was in flight.
func (f *inflight) done(id []byte) bool {
	key := jsonrpc.IDKey(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[key]
	delete(f.ids, key)
	return ok
}

func (f *inflight) has(id []byte) bool {
	key := jsonrpc.IDKey(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[key]
	return ok
}

// drain removes every id still waiting and returns them in the order they
// were sent, those of one batch together.
func (f *inflight) drain() [][][]byte {
	f.mu.Lock()
	ids := f.ids
	f.ids = nil
	f.mu.Unlock()
	entries := make([]sent, 0, len(ids))
	for _, s := range ids {
		entries = append(entries, s)
	}
	slices.SortFunc(entries, func(a, b sent) int { return cmp.Compare(a.seq, b.seq) })
	var groups [][][]byte
	batchAt := map[uint64]int{}
	for _, e := range entries {
		if e.batch == 0 {
			groups = append(groups, [][]byte{[]byte(e.id)})
			continue
		}
		i, ok := batchAt[e.batch]
		if !ok {
			i = len(groups)
			batchAt[e.batch] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], []byte(e.id))
	}
	return groups
}

// serverRequests are the remote server's requests to the host that the
// host has not answered. Ids pass unchanged on the first connection; on
// later ones each gets an id of m2m-ssh's making, so that the host's late
// answer to a request of a lost connection can never be taken for the
// answer to a new request that happens to reuse its id.
type serverRequests struct {
	mu   sync.Mutex
	gen  int
	next uint64
	// ids are keyed by the id the host sees (jsonrpc.IDKey: the host may
	// spell it its own way when it answers).
	ids     map[string]serverRequest
	refusal int // requests refused since the table was last full
}

// serverRequest is one request of the server's waiting for the host.
type serverRequest struct {
	hostID   []byte // as the host was shown it
	remoteID []byte // as the remote sent it; nil when the host saw it as is
}

// maxServerRequests bounds the server's requests waiting for the host: MCP
// servers ask the host a handful of things at a time (sampling,
// elicitation, roots), and a server that asks without end must not fill
// m2m-ssh's memory.
const maxServerRequests = 1024

// add records a request with the remote's id and returns the id to show
// the host, or nil when it is the same. ok is false, and nothing recorded,
// when maxServerRequests wait already.
func (s *serverRequests) add(id []byte) (hostID []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[string]serverRequest)
	}
	key := jsonrpc.IDKey(id)
	if _, dup := s.ids[key]; len(s.ids) >= maxServerRequests && (s.gen > 0 || !dup) {
		s.refusal++
		return nil, false
	}
	if s.gen == 0 {
		s.ids[key] = serverRequest{hostID: bytes.Clone(id)}
		return nil, true
	}
	s.next++
	hostID = strconv.AppendQuote(nil, "m2m-ssh-"+strconv.Itoa(s.gen)+"-"+strconv.FormatUint(s.next, 10))
	s.ids[string(hostID)] = serverRequest{hostID: hostID, remoteID: bytes.Clone(id)}
	return hostID, true
}

// refused is how many requests were refused since the table last had
// room, this one included.
func (s *serverRequests) refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal
}

// settle returns the count of requests refused while the table was full,
// and starts a new count, once the table has room again.
func (s *serverRequests) settle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.refusal
	if n == 0 || len(s.ids) >= maxServerRequests {
		return 0
	}
	s.refusal = 0
	return n
}

// answer takes the host's answer to hostID off the books. It returns the
// remote's id when it differs, and false when no request of the present
// connection has that id.
func (s *serverRequests) answer(hostID []byte) (remoteID []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := jsonrpc.IDKey(hostID)
	req, ok := s.ids[key]
	delete(s.ids, key)
	return req.remoteID, ok
}

// forget drops every request of the lost connection and returns their ids
// as the host saw them. Requests of the next connection get new ids.
func (s *serverRequests) forget() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([][]byte, 0, len(s.ids))
	for _, req := range s.ids {
		ids = append(ids, req.hostID)
	}
	s.ids = nil
	s.gen++
	s.refusal = 0
	return ids
}
