package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// session is the state of one Run: the host's session with the remote
// MCP server as the host sees it, across the connections (links) that
// carry it.
type session struct {
	b    *Bridge
	ctx  context.Context
	host *hostWriter

	frames      <-chan hostFrame // nil once the host closed stdin
	eof         bool
	queue       []hostFrame // read from the host, not yet handed to a link
	queuedBytes int

	books   books
	strayed atomic.Bool

	// The host reader writes its frames to the live link itself while
	// nothing waits for it (direct), and hands them to the loop otherwise.
	gate struct {
		sync.Mutex
		direct  *sender
		viaLoop int  // frames handed to the loop, not yet received
		trying  bool // the reader is writing a frame to direct
	}

	// backlog tells the host reader when the frames held for the loop
	// reach maxQueued, so that it waits before it reads another.
	backlog backlog

	link     *link // nil while reconnecting
	failures int   // tries in a row that did not bring a working session
	lostAt   time.Time
	// reconnected delivers the reconnecting goroutine's result; nil when
	// none runs.
	reconnected     chan reconnected
	cancelReconnect context.CancelFunc
}

// loop moves the host's frames to the live link, and restores the session
// when the link is lost, until the session ends.
func (r *session) loop() (int, error) {
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	defer r.backlog.set(false)
	for {
		var pumped, failed <-chan struct{}
		var delivered <-chan struct{}
		var expired <-chan time.Time
		if l := r.link; l != nil {
			pumped, failed = l.pumped, l.send.failed
			switch {
			case l.delivering:
				delivered = l.delivered
			case len(r.queue) > 0:
				r.deliver(l)
				delivered = l.delivered
			case r.eof:
				return r.finish()
			case !l.direct:
				r.tryDirect(l)
			}
		} else if d, ok := r.nextExpiry(); ok {
			expiry.Reset(d)
			expired = expiry.C
		}
		frames := r.frames
		held := r.queuedBytes
		if r.link != nil {
			held += r.link.deliveringBytes
		}
		r.backlog.set(held >= maxQueued)
		if held >= maxQueued {
			frames = nil
		}
		select {
		case f, ok := <-frames:
			if !ok {
				r.b.Logger.Debug("host closed stdin")
				r.eof, r.frames = true, nil
				if r.link == nil {
					return r.abandon("the host closed stdin")
				}
				continue
			}
			r.gate.Lock()
			r.gate.viaLoop--
			r.gate.Unlock()
			if r.link == nil {
				f.at = time.Now()
			}
			r.queue = append(r.queue, f)
			r.queuedBytes += len(f.data)
		case <-delivered:
			r.link.delivering, r.link.deliveringBytes = false, 0
		case <-pumped:
			if errors.Is(r.link.pumpErr, errHostGone) {
				return r.hostGone()
			}
			if done, code, err := r.lose(); done {
				return code, err
			}
		case <-failed:
			if done, code, err := r.lose(); done {
				return code, err
			}
		case res := <-r.reconnected:
			if done, code, err := r.restored(res); done {
				return code, err
			}
		case <-expired:
			r.expire()
		case <-r.ctx.Done():
			r.b.Logger.Info("ending the session", "reason", context.Cause(r.ctx))
			r.indirect()
			r.takeWaiting()
			if r.link == nil {
				return r.abandon("m2m-ssh is shutting down")
			}
			r.answerQueue(CodeUnavailable, "m2m-ssh: shutting down; the request was not sent")
			return r.finish()
		}
	}
}

// deliver writes the frames that waited for the link, in a goroutine: a
// remote that does not read cannot hold the loop.
func (r *session) deliver(l *link) {
	frames := r.queue
	l.deliveringBytes = r.queuedBytes
	r.queue, r.queuedBytes = nil, 0
	l.delivering = true
	go func() {
		l.send.deliver(&r.books, frames)
		l.delivered <- struct{}{}
	}()
}

// tryDirect lets the host reader write to the live link itself, once
// every frame it handed to the loop has been written.
func (r *session) tryDirect(l *link) {
	r.gate.Lock()
	defer r.gate.Unlock()
	if r.gate.viaLoop == 0 && !r.gate.trying {
		r.gate.direct = l.send
		l.direct = true
	}
}

// indirect stops the host reader from writing to the link: its frames
// go to the loop.
func (r *session) indirect() {
	r.gate.Lock()
	r.gate.direct = nil
	r.gate.Unlock()
	if r.link != nil {
		r.link.direct = false
	}
}

// takeWaiting moves the frames the host reader has handed over, and the
// loop not yet received, to the queue: a request the host sent just before
// a signal is answered too.
func (r *session) takeWaiting() {
	for r.frames != nil {
		select {
		case f, ok := <-r.frames:
			if !ok {
				r.eof, r.frames = true, nil
				return
			}
			r.gate.Lock()
			r.gate.viaLoop--
			r.gate.Unlock()
			r.queue = append(r.queue, f)
			r.queuedBytes += len(f.data)
		default:
			return
		}
	}
}

// finish ends a session the host is done with, or that a signal ends: EOF
// to the remote, a bounded wait for it to end, the server asked to stop it
// when it does not, then its exit status. Requests it left unanswered get
// an error.
func (r *session) finish() (int, error) {
	l := r.link
	r.indirect()
	l.endInput()
	hurry := r.ctx.Done()
	status := r.b.stopRemote(l.remote, hurry)
	if status != transport.ErrNoExitStatus {
		r.drain(l, hurry)
	}
	r.close(l)
	msg := fmt.Sprintf("m2m-ssh: the remote MCP server on %s ended before answering; the request may or may not have run", r.b.Name)
	r.answerPending(CodeConnectionLost, msg)
	// A frame the host reader was still taking in when a signal came
	// reached the loop after it stopped receiving.
	r.takeWaiting()
	r.answerQueue(CodeUnavailable, "m2m-ssh: shutting down; the request was not sent")
	return exitStatus(status)
}

// drain waits for what an ended program wrote to reach the host and the
// log: its channel has closed, so the rest is in memory, unless the host
// or the log does not read it.
func (r *session) drain(l *link, hurry <-chan struct{}) {
	timer := time.NewTimer(statusWait)
	defer timer.Stop()
	for _, done := range []<-chan struct{}{l.pumped, l.stderr} {
		select {
		case <-done:
			continue
		case <-hurry:
		case <-timer.C:
			return
		}
		// A signal came: what is left has a moment.
		timer.Reset(hurriedDrain)
		hurry = nil
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}

// hostGone ends a session whose host stopped reading. The program is
// stopped as after a signal: nobody waits for it.
func (r *session) hostGone() (int, error) {
	l := r.link
	err := l.pumpErr
	r.indirect()
	r.b.Logger.Warn("the host stopped reading; ending the session", "err", err)
	l.endInput()
	r.b.stopRemote(l.remote, closedChan)
	r.close(l)
	return ExitStatus, err
}

// answerPending answers every request in flight on a link that has ended.
func (r *session) answerPending(code int, msg string) int {
	n := 0
	for _, ids := range r.books.pending.drain() {
		n += len(ids)
		if len(ids) == 1 {
			r.host.frame(jsonrpc.ErrorFrame(ids[0], code, msg, nil))
		} else {
			r.host.frame(jsonrpc.ErrorBatch(ids, code, msg))
		}
	}
	return n
}

// answerQueue answers every request that waits for a session, and drops
// the queue.
func (r *session) answerQueue(code int, msg string) {
	for i := range r.queue {
		r.host.answer(&r.queue[i], code, msg)
	}
	r.queue, r.queuedBytes = nil, 0
}

// readHost reads the host's frames and answers the ones that are not JSON.
// It writes the others to the live link itself when it may (the path of
// every frame in a working session), and hands them to the loop otherwise.
// It closes frames at the end of input.
func (r *session) readHost(in io.Reader, frames chan<- hostFrame) {
	defer close(frames)
	b := r.b
	fr := jsonrpc.NewFrameReader(in)
	fr.Max = b.MaxFrame
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
			answer, ok := r.hostTooLarge(tl)
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
				b.Logger.Warn("reading from the host failed", "err", err)
			}
			return
		}
		if !json.Valid(frame) {
			// Its text may hold anything the host sends, secrets
			// included: only at DEBUG.
			b.Logger.Warn("the host sent a frame that is not JSON; answered with a parse error", "bytes", len(frame))
			b.Logger.Debug("the frame that is not JSON", "start", jsonrpc.Preview(frame))
			r.host.frame(jsonrpc.ErrorFrame(nil, CodeParseError, "m2m-ssh: parse error: the frame is not valid JSON", nil))
			continue
		}
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
		more := fr.Buffered()
		if s := r.sendDirect(f, more); s != nil {
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

// hostTooLarge handles a frame from the host over the limit, which the
// reader discarded. A request gets an error (a frame whose id cannot be
// read, one with id null); the host's answer to a request of the server's
// becomes an error answer, returned to be sent in its place.
func (r *session) hostTooLarge(tl *jsonrpc.FrameTooLargeError) (answer []byte, ok bool) {
	env, found := jsonrpc.HeadEnvelope(tl.Head)
	r.b.Logger.Warn("the host sent a frame over --max-frame; discarded it", "bytes", tl.Size, "limit", tl.Limit, "kind", env.Kind, "id", string(env.ID))
	r.b.Logger.Debug("the frame over the limit", "start", jsonrpc.Preview(tl.Head))
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

// sendDirect writes f to the live link when the reader may write to it
// itself, flushing unless more (another frame waits to be read), and
// returns the link's sender. Otherwise it counts f as handed to the loop,
// and returns nil.
func (r *session) sendDirect(f hostFrame, more bool) *sender {
	g := &r.gate
	g.Lock()
	s := g.direct
	if s == nil {
		g.viaLoop++
		g.Unlock()
		return nil
	}
	g.trying = true
	g.Unlock()
	sent := s.send(&r.books, f, !more)
	g.Lock()
	g.trying = false
	if !sent {
		// The link is lost or ending: the loop takes f.
		g.viaLoop++
		g.Unlock()
		return nil
	}
	g.Unlock()
	return s
}

// start runs a link over remote, whose frames fr reads. prelude are frames
// the remote sent during a replayed handshake, to pass on first.
func (r *session) start(remote transport.Remote, fr *remoteFrames, prelude [][]byte) *link {
	l := &link{
		s:         r,
		remote:    remote,
		send:      &sender{remote: remote, w: bufio.NewWriterSize(remote, 64<<10), failed: make(chan struct{})},
		delivered: make(chan struct{}, 1),
		pumped:    make(chan struct{}),
		stderr:    make(chan struct{}),
		ended:     make(chan struct{}),
	}
	go func() {
		defer close(l.pumped)
		l.pumpErr = l.pump(fr, prelude)
	}()
	go func() {
		defer close(l.stderr)
		r.b.copyStderr(remote.Stderr())
	}()
	return l
}

// close ends a link that is lost or done with, and returns the frames it
// was given but did not send. When it returns the connection is closed and
// nothing more goes on the books for it. The host reader no longer writes
// to it directly: r.indirect was called.
func (r *session) close(l *link) []hostFrame {
	l.remote.Close()
	if l.delivering {
		<-l.delivered
		l.delivering, l.deliveringBytes = false, 0
	}
	if l.ending {
		<-l.ended
	}
	unsent := l.send.shut()
	<-l.pumped
	return unsent
}

// lose handles the loss of the live link while the host still talks: the
// requests in flight are answered, the remote's requests are forgotten,
// and a goroutine starts to restore the session. done reports that the
// session is over instead, with its exit code and error.
func (r *session) lose() (done bool, code int, err error) {
	l := r.link
	r.indirect()
	status := l.status(statusWait)
	unsent := r.close(l)
	r.link = nil
	var refused *transport.ChannelError
	if r.lostAt.IsZero() && (errors.As(status, &refused) || errors.As(l.pumpErr, &refused)) {
		return r.neverStarted(unsent, refused)
	}
	r.lostAt = time.Now()
	what := describeEnd(status)
	if l.pumpErr != nil && !errors.Is(l.pumpErr, io.EOF) {
		r.b.Logger.Debug("remote pump ended", "err", l.pumpErr)
	}
	if l.send.err != nil {
		r.b.Logger.Debug("writing to the remote failed", "err", l.send.err)
	}
	if l.heard.Load() {
		r.failures = 0
	}

	msg := fmt.Sprintf("m2m-ssh: the connection to %s was lost (%s); the request may or may not have run", r.b.Name, what)
	n := r.answerPending(CodeConnectionLost, msg)
	r.books.hs.lost()
	for _, id := range r.books.server.forget() {
		// The host may be asking its user something for the lost
		// server: it can stop.
		r.host.frame(jsonrpc.Notification(methodCancelled, map[string]any{
			"requestId": rawJSON(id),
			"reason":    fmt.Sprintf("m2m-ssh: the connection to %s was lost", r.b.Name),
		}))
	}
	if len(unsent) > 0 {
		r.queue = append(unsent, r.queue...)
		for _, f := range unsent {
			r.queuedBytes += len(f.data)
		}
	}
	for i := range r.queue {
		r.queue[i].at = r.lostAt
	}

	if r.b.Retries < 0 || r.eof || r.ctx.Err() != nil {
		r.b.Logger.Error(what, "target", r.b.Name, "answered", n)
		r.answerQueue(CodeUnavailable, fmt.Sprintf("m2m-ssh: the connection to %s was lost (%s); the request was not sent", r.b.Name, what))
		code, _ := exitStatus(status)
		err := fmt.Errorf("bridge: the connection to %s was lost (%s)", r.b.Name, what)
		if r.b.Retries < 0 && !r.eof {
			r.b.refuse(r.ctx, r.frames, r.host, err)
		}
		return true, code, err
	}
	r.b.Logger.Warn("the connection was lost; reconnecting", "target", r.b.Name, "cause", what, "answered", n)
	r.startReconnect(what)
	return false, 0, nil
}

// neverStarted ends a session whose first program the server refused to
// start: transport sends the host's first frames without waiting for the
// server's answer, so the refusal comes as the link's end rather than as
// Connect's error. The host hears it as it would a failed connect, once
// for each request, and nothing is retried.
func (r *session) neverStarted(unsent []hostFrame, err error) (bool, int, error) {
	msg := refusal(err)
	n := r.answerPending(CodeUnavailable, msg)
	for i := range unsent {
		r.host.answer(&unsent[i], CodeUnavailable, msg)
	}
	r.answerQueue(CodeUnavailable, msg)
	r.b.Logger.Debug("the program was refused", "target", r.b.Name, "answered", n+len(unsent))
	if !r.eof {
		r.b.refuse(r.ctx, r.frames, r.host, err)
	}
	return true, ExitStatus, err
}

func (r *session) startReconnect(cause string) {
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancelReconnect = cancel
	ch := make(chan reconnected, 1)
	r.reconnected = ch
	script := r.books.hs.script()
	failures := r.failures
	go func() { ch <- r.b.reconnect(ctx, script, failures, cause) }()
}

// restored takes the outcome of reconnecting: a live link, or the end.
func (r *session) restored(res reconnected) (done bool, code int, err error) {
	r.reconnected = nil
	r.cancelReconnect()
	r.failures = res.tries
	if res.err != nil {
		code, err := r.giveUp(res)
		return true, code, err
	}
	a := res.a
	r.link = r.start(a.remote, a.fr, a.prelude)
	if a.proven {
		r.link.heard.Store(true)
		r.failures = 0
	}
	r.b.Logger.Info("reconnected", "target", r.b.Name, "took", time.Since(r.lostAt).Round(time.Millisecond), "waiting", len(r.queue))
	for _, m := range a.changed {
		r.host.frame(jsonrpc.Notification(m, nil))
	}
	return false, 0, nil
}

// giveUp ends a session that could not be restored: everything waiting is
// answered, and so is every request the host sends until it is quiet.
func (r *session) giveUp(res reconnected) (int, error) {
	err := &ReconnectError{Alias: r.b.Name, Tries: res.tries, Err: res.err}
	r.b.Logger.Error("giving up", "target", r.b.Name, "tries", res.tries, "err", res.err)
	r.answerQueue(CodeUnavailable, "m2m-ssh: "+err.Error()+"; the request was not sent")
	r.b.refuse(r.ctx, r.frames, r.host, err)
	return ExitStatus, err
}

// abandon ends a session while it is being restored: the host closed
// stdin, or a signal came.
func (r *session) abandon(why string) (int, error) {
	if r.reconnected != nil {
		r.cancelReconnect()
		if res := <-r.reconnected; res.a != nil {
			// A program was started for the session: it is not
			// left running.
			res.a.remote.CloseWrite()
			r.b.stopRemote(res.a.remote, r.ctx.Done())
			res.a.remote.Close()
		}
		r.reconnected = nil
	}
	r.answerQueue(CodeUnavailable, fmt.Sprintf("m2m-ssh: %s while the connection to %s was being restored; the request was not sent", why, r.b.Name))
	return ExitStatus, fmt.Errorf("bridge: the connection to %s was lost, and %s before it was restored", r.b.Name, why)
}

// nextExpiry is how long until the oldest request waiting for the session
// has waited ReconnectTimeout.
func (r *session) nextExpiry() (time.Duration, bool) {
	for i := range r.queue {
		if ids, _ := r.queue[i].requests(); len(ids) > 0 {
			return time.Until(r.queue[i].at.Add(r.b.ReconnectTimeout)), true
		}
	}
	return 0, false
}

// expire answers the requests that have waited ReconnectTimeout for the
// session to come back, and takes them out of the queue.
func (r *session) expire() {
	now := time.Now()
	msg := fmt.Sprintf("m2m-ssh: the connection to %s was lost and is not back after %s; the request was not sent", r.b.Name, r.b.ReconnectTimeout)
	kept := r.queue[:0]
	for i := range r.queue {
		f := &r.queue[i]
		if ids, _ := f.requests(); len(ids) > 0 && !now.Before(f.at.Add(r.b.ReconnectTimeout)) {
			r.host.answer(f, CodeUnavailable, msg)
			r.queuedBytes -= len(f.data)
			continue
		}
		kept = append(kept, *f)
	}
	r.queue = kept
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
