package bridge

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// hostWriter writes whole frames to the host, one at a time, from the
// remote pump and from the bridge's own answers. The pump may hold frames
// back while more are waiting (a burst), and flushes when it would block;
// every other write is flushed at once, after what was held back.
type hostWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf *bufio.Writer
	err error
}

// hostBuffer is the size of the buffer that gathers a burst of small
// frames into one write; a larger frame goes straight through.
const hostBuffer = 64 << 10

// frame writes one frame, which ends in '\n', and flushes. After the first
// failure (the host has gone) it keeps returning that error.
func (h *hostWriter) frame(b []byte) error { return h.write(b, true) }

// write writes one frame, and flushes it unless flush is false.
func (h *hostWriter) write(b []byte, flush bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	if h.buf == nil {
		h.buf = bufio.NewWriterSize(h.w, hostBuffer)
	}
	if _, h.err = h.buf.Write(b); h.err == nil && flush {
		h.err = h.buf.Flush()
	}
	return h.err
}

// flush writes what write held back.
func (h *hostWriter) flush() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil && h.buf != nil {
		h.err = h.buf.Flush()
	}
	return h.err
}

// answer answers the requests of a frame that will not be sent.
func (h *hostWriter) answer(f *hostFrame, code int, msg string) {
	ids, batch := f.requests()
	switch {
	case len(ids) == 0:
	case batch:
		h.frame(jsonrpc.ErrorBatch(ids, code, msg))
	default:
		h.frame(jsonrpc.ErrorFrame(ids[0], code, msg, nil))
	}
}

// hostFrame is a frame from the host, owned by the bridge. env and elems
// alias data.
type hostFrame struct {
	data  []byte
	env   jsonrpc.Envelope // jsonrpc.KindBatch for a batch
	elems []element        // a batch's messages
	at    time.Time        // when it started to wait for a session
}

// newHostFrame makes a frame the host sent safe to pass on (a copy the
// bridge owns) and reads its envelope, and each message's in a batch.
func newHostFrame(frame []byte) hostFrame {
	f := hostFrame{data: jsonrpc.AppendSafe(make([]byte, 0, len(frame)), frame)}
	f.env, _ = jsonrpc.ParseEnvelope(f.data)
	if f.env.Kind == jsonrpc.KindBatch {
		elems, _ := jsonrpc.Elements(f.data)
		f.elems = make([]element, len(elems))
		for i, e := range elems {
			env, _ := jsonrpc.ParseEnvelope(e)
			f.elems[i] = element{e, env}
		}
	}
	return f
}

type element struct {
	raw []byte
	env jsonrpc.Envelope
}

// requests are the ids of the frame's requests; batch reports that it is
// a batch, whose requests are answered together.
func (f *hostFrame) requests() (ids [][]byte, batch bool) {
	if f.env.Kind != jsonrpc.KindBatch {
		if f.env.Kind == jsonrpc.KindRequest {
			return [][]byte{f.env.ID}, false
		}
		return nil, false
	}
	for _, e := range f.elems {
		if e.env.Kind == jsonrpc.KindRequest {
			ids = append(ids, e.env.ID)
		}
	}
	return ids, true
}
