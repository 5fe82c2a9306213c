package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
)

// hostReader reads the host's frames and answers the ones that are not
// JSON, or over the limit. It writes the others to the live link itself
// while the gate lets it (the path of every frame in a working session),
// and hands them to the loop otherwise.
type hostReader struct {
	log      *slog.Logger
	maxFrame int
	ctx      context.Context
	host     *hostWriter
	books    *books
	gate     *gate
	backlog  *backlog
}

// run reads until the end of input, and then closes frames.
func (r *hostReader) run(in io.Reader, frames chan<- hostFrame) {
	defer close(frames)
	fr := jsonrpc.NewFrameReader(in)
	fr.Max = r.maxFrame
	// held has frames written but not flushed, while more were waiting
	// to be read: a burst goes to the remote in one write, and nothing
	// is held back while the reader waits for the host.
	var held *sender
	for {
		if held != nil && !fr.Buffered() {
			held.flush()
			held = nil
		}
		// Not a byte more while the backlog is full: the host waits,
		// and m2m-ssh holds no frame it cannot place.
		r.backlog.wait(r.ctx)
		frame, err := fr.Next()
		var tl *jsonrpc.FrameTooLargeError
		if errors.As(err, &tl) {
			answer, ok := r.tooLarge(tl)
			if !ok {
				continue
			}
			frame, err = answer, nil
		}
		if err != nil {
			if held != nil {
				held.flush()
			}
			if !errors.Is(err, io.EOF) {
				r.log.Warn("reading from the host failed", "err", err)
			}
			return
		}
		if !json.Valid(frame) {
			// Its text may hold anything the host sends, secrets
			// included: only at DEBUG.
			r.log.Warn("the host sent a frame that is not JSON; answered with a parse error", "bytes", len(frame))
			r.log.Debug("the frame that is not JSON", "start", jsonrpc.Preview(frame))
			r.host.frame(jsonrpc.ErrorFrame(nil, CodeParseError, "m2m-ssh: parse error: the frame is not valid JSON", nil))
			continue
		}
		f := newHostFrame(frame)
		more := fr.Buffered()
		if s := r.gate.send(r.books, f, more); s != nil {
			held = nil
			if more {
				held = s
			}
			continue
		}
		if held != nil {
			held.flush()
			held = nil
		}
		// The loop may not take f for a while (a backlog is full):
		// meanwhile the reader holds no frame's worth of buffer.
		fr.Release()
		frames <- f
	}
}

// tooLarge handles a frame from the host over the limit, which the reader
// discarded. A request gets an error (a frame whose id cannot be read, one
// with id null); the host's answer to a request of the server's becomes an
// error answer, returned to be sent in its place.
func (r *hostReader) tooLarge(tl *jsonrpc.FrameTooLargeError) (answer []byte, ok bool) {
	env, found := jsonrpc.HeadEnvelope(tl.Head)
	r.log.Warn("the host sent a frame over --max-frame; discarded it", "bytes", tl.Size, "limit", tl.Limit, "kind", env.Kind, "id", string(env.ID))
	r.log.Debug("the frame over the limit", "start", jsonrpc.Preview(tl.Head))
	size, limit := frameSize(tl), byteCount(int64(tl.Limit))
	if found && env.Kind == jsonrpc.KindResponse {
		return jsonrpc.ErrorFrame(env.ID, CodeInternalError, fmt.Sprintf(
			"m2m-ssh: the host's answer was %s, over m2m-ssh's limit of %s (--max-frame); it was discarded", size, limit), nil), true
	}
	if env.Kind == jsonrpc.KindNotification {
		return nil, false
	}
	var id []byte
	if found {
		id = env.ID
	}
	r.host.frame(jsonrpc.ErrorFrame(id, CodeInvalidRequest, fmt.Sprintf(
		"m2m-ssh: the request is %s, over the limit of %s; it was not sent (hint: raise --max-frame, or send less)", size, limit), nil))
	return nil, false
}

// gate says where the host reader's frames go: to the live link's sender,
// written by the reader itself while nothing waits for the loop (direct),
// or to the loop. The loop opens and shuts it; the reader passes through.
type gate struct {
	mu      sync.Mutex
	direct  *sender
	viaLoop int  // frames handed to the loop, not yet received
	trying  bool // the reader is writing a frame to direct
}

// open lets the reader write to s itself, once every frame it handed to
// the loop has been received; it reports whether it did.
func (g *gate) open(s *sender) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.viaLoop == 0 && !g.trying {
		g.direct = s
		return true
	}
	return false
}

// shut sends the reader's frames to the loop.
func (g *gate) shut() {
	g.mu.Lock()
	g.direct = nil
	g.mu.Unlock()
}

// received counts a frame the loop took from the reader.
func (g *gate) received() {
	g.mu.Lock()
	g.viaLoop--
	g.mu.Unlock()
}

// send writes f to the live link when the reader may write to it itself,
// flushing unless more (another frame waits to be read), and returns the
// link's sender. Otherwise it counts f as handed to the loop, and returns
// nil.
func (g *gate) send(bk *books, f hostFrame, more bool) *sender {
	g.mu.Lock()
	s := g.direct
	if s == nil {
		g.viaLoop++
		g.mu.Unlock()
		return nil
	}
	g.trying = true
	g.mu.Unlock()
	sent := s.send(bk, f, !more)
	g.mu.Lock()
	g.trying = false
	if !sent {
		// The link is lost or ending: the loop takes f.
		g.viaLoop++
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	return s
}

// backlog is whether the frames held for the loop have reached maxQueued.
// The loop sets it; the host reader waits while it is full.
type backlog struct {
	full atomic.Bool // read by the reader before every frame, without the lock
	mu   sync.Mutex
	room chan struct{} // closed when the backlog has room again
}

func (b *backlog) set(full bool) {
	if b.full.Load() == full {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if full {
		b.room = make(chan struct{})
	} else {
		close(b.room)
	}
	b.full.Store(full)
}

// wait returns once the backlog has room, or ctx ends.
func (b *backlog) wait(ctx context.Context) {
	if !b.full.Load() {
		return
	}
	b.mu.Lock()
	room := b.room
	full := b.full.Load()
	b.mu.Unlock()
	if !full {
		return
	}
	select {
	case <-room:
	case <-ctx.Done():
	}
}
