package bridge

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"sync"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// JSON-RPC error codes m2m-ssh answers with on the server's behalf. The
// two codes tell a host whether a request is safe to send again.
const (
	// CodeParseError answers a frame from the host that is not JSON.
	CodeParseError = -32700
	// CodeUnavailable answers a request that was not sent to the remote
	// server: the session could not start, was not back within the
	// reconnect timeout, or m2m-ssh gave up or was shutting down. The
	// request did not run; sending it again is safe.
	CodeUnavailable = -32000
	// CodeConnectionLost answers a request that was sent to the remote
	// server when the connection to it, or the server process, was lost
	// before it answered. The request may or may not have run.
	CodeConnectionLost = -32001
	// CodeInvalidRequest answers a request over the frame limit, which
	// was not passed on.
	CodeInvalidRequest = -32600
	// CodeInternalError answers a request whose response from the remote
	// server could not be passed on: over the frame limit, or not JSON.
	// The request ran.
	CodeInternalError = -32603
)

// frameSize says how large a frame over the limit was.
func frameSize(tl *jsonrpc.FrameTooLargeError) string {
	if tl.Cut {
		return "at least " + byteCount(tl.Size)
	}
	return byteCount(tl.Size)
}

// byteCount is n bytes, for people, as --max-frame takes it.
func byteCount(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// inflight is the set of the host's requests the remote has not answered,
// by raw id, with the order they were sent in and the batch they came in.
type inflight struct {
	mu  sync.Mutex
	seq uint64
	ids map[string]sent
}

type sent struct {
	seq   uint64
	batch uint64 // 0 when the request came alone
}

func (f *inflight) add(id []byte, batch uint64) {
	f.mu.Lock()
	if f.ids == nil {
		f.ids = make(map[string]sent)
	}
	f.seq++
	f.ids[string(id)] = sent{f.seq, batch}
	f.mu.Unlock()
}

// done takes id off the books, and reports whether it was in flight.
func (f *inflight) done(id []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[string(id)]
	delete(f.ids, string(id))
	return ok
}

func (f *inflight) has(id []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.ids[string(id)]
	return ok
}

// drain removes every id still waiting and returns them in the order they
// were sent, those of one batch together.
func (f *inflight) drain() [][][]byte {
	f.mu.Lock()
	ids := f.ids
	f.ids = nil
	f.mu.Unlock()
	type entry struct {
		id string
		sent
	}
	entries := make([]entry, 0, len(ids))
	for id, s := range ids {
		entries = append(entries, entry{id, s})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
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
	mu      sync.Mutex
	gen     int
	next    uint64
	ids     map[string][]byte // as the host sees it -> as the remote sent it
	refusal int               // requests refused since the table was last full
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
		s.ids = make(map[string][]byte)
	}
	if _, dup := s.ids[string(id)]; len(s.ids) >= maxServerRequests && (s.gen > 0 || !dup) {
		s.refusal++
		return nil, false
	}
	if s.gen == 0 {
		s.ids[string(id)] = nil
		return nil, true
	}
	s.next++
	hostID = strconv.AppendQuote(nil, "m2m-ssh-"+strconv.Itoa(s.gen)+"-"+strconv.FormatUint(s.next, 10))
	s.ids[string(hostID)] = bytes.Clone(id)
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
	remoteID, ok = s.ids[string(hostID)]
	delete(s.ids, string(hostID))
	return remoteID, ok
}

// forget drops every request of the lost connection and returns their ids
// as the host saw them. Requests of the next connection get new ids.
func (s *serverRequests) forget() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([][]byte, 0, len(s.ids))
	for id := range s.ids {
		ids = append(ids, []byte(id))
	}
	s.ids = nil
	s.gen++
	s.refusal = 0
	return ids
}
