package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// Bridge carries one MCP host session over SSH.
type Bridge struct {
	// Name is the target's alias, for messages.
	Name    string
	Connect transport.Connect
	Logger  *slog.Logger
	// Stderr receives the remote's stderr, each line prefixed; nil
	// discards it. Its writes must not block: a copy that waits holds
	// up the channel, stdout included (the command gives a
	// logsink.Writer).
	Stderr io.Writer
	// ExitWait is how long the remote program has to exit after the
	// host closed stdin before the server is asked to signal it TERM,
	// then KILL (default 2 s); after a signal it has less.
	ExitWait time.Duration
	// FailGrace is how long a failed start waits for the host's first
	// request, to answer it with the error (default 2 s).
	FailGrace time.Duration
	// ReconnectTimeout is how long a host request waits for a lost
	// session to come back before it is answered with CodeUnavailable;
	// it also bounds each replayed handshake (default 30 s).
	ReconnectTimeout time.Duration
	// Retries is how many tries in a row to restore a lost session
	// m2m-ssh makes before it gives up (default DefaultRetries); a
	// negative value turns reconnecting off.
	Retries int
	// BackoffMin is the wait before the first try, doubled for each
	// failed one up to BackoffMax (defaults 250 ms and 10 s).
	BackoffMin, BackoffMax time.Duration
	// MaxFrame is the longest frame carried either way, newline not
	// counted (default jsonrpc.DefaultMaxFrame). A longer one is discarded as it
	// streams, and the request it carries or answers gets an error.
	MaxFrame int

	// schedules are the waits of ending a remote program; tests
	// shorten them.
	schedules schedules
}

// ExitStatus is the exit status m2m-ssh reports for its own failures, as
// ssh does.
const ExitStatus = 255

// DefaultRetries is how many tries in a row m2m-ssh makes to restore a
// lost session: with the default backoff, about a minute.
const DefaultRetries = 10

// statusWait bounds the wait for a lost program's exit status, which a
// program that exited sends just before its channel closes.
const statusWait = time.Second

// maxQueued is how many bytes of the host's frames the bridge holds before
// it stops reading more: a remote that reads slowly, or a session being
// restored, holds the host back rather than filling memory.
const maxQueued = 64 << 20

// run is the state of one Run: the session as the host sees it, across
// the connections that carry it.
type run struct {
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

	link     *link // nil while reconnecting
	failures int   // tries in a row that did not bring a working session
	lostAt   time.Time
	// reconnected delivers the reconnecting goroutine's result; nil when
	// none runs.
	reconnected     chan reconnected
	cancelReconnect context.CancelFunc
}

// Run bridges in (the host's stdin) and out (its stdout) to the remote
// until the host closes stdin or ctx ends, restoring the session when the
// connection or the remote program is lost. It returns the remote program's
// exit status, or ExitStatus and the error that kept the session from
// running.
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) (int, error) {
	b.defaults()
	r := &run{b: b, ctx: ctx, host: &hostWriter{w: out}}
	r.books.log = b.Logger
	frames := make(chan hostFrame, 64)
	r.frames = frames
	go r.readHost(in, frames)

	// The first connect is tried once: a session that never started has
	// nothing to lose, and the usual causes (a wrong name, key or host
	// key) do not heal by waiting, so the host hears of them at once.
	start := time.Now()
	remote, err := b.Connect(ctx)
	if err != nil {
		b.refuse(ctx, frames, r.host, err)
		return ExitStatus, err
	}
	b.Logger.Info("connected", "target", b.Name, "took", time.Since(start).Round(time.Millisecond))
	r.link = r.start(remote, newRemoteFrames(remote), nil)
	return r.loop()
}

func (b *Bridge) defaults() {
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	if b.Stderr == nil {
		b.Stderr = io.Discard
	}
	if b.ExitWait <= 0 {
		b.ExitWait = exitGrace
	}
	b.schedules.defaults(b.ExitWait)
	if b.FailGrace <= 0 {
		b.FailGrace = 2 * time.Second
	}
	if b.ReconnectTimeout <= 0 {
		b.ReconnectTimeout = 30 * time.Second
	}
	if b.Retries == 0 {
		b.Retries = DefaultRetries
	}
	if b.BackoffMin <= 0 {
		b.BackoffMin = 250 * time.Millisecond
	}
	if b.MaxFrame <= 0 {
		b.MaxFrame = jsonrpc.DefaultMaxFrame
	}
	if b.BackoffMax < b.BackoffMin {
		b.BackoffMax = max(10*time.Second, b.BackoffMin)
	}
}

// loop moves the host's frames to the live link, and restores the session
// when the link is lost, until the session ends.
func (r *run) loop() (int, error) {
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
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
		if r.queuedBytes >= maxQueued {
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
			r.link.delivering = false
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
func (r *run) deliver(l *link) {
	frames := r.queue
	r.queue, r.queuedBytes = nil, 0
	l.delivering = true
	go func() {
		l.send.deliver(&r.books, frames)
		l.delivered <- struct{}{}
	}()
}

// tryDirect lets the host reader write to the live link itself, once
// every frame it handed to the loop has been written.
func (r *run) tryDirect(l *link) {
	r.gate.Lock()
	defer r.gate.Unlock()
	if r.gate.viaLoop == 0 && !r.gate.trying {
		r.gate.direct = l.send
		l.direct = true
	}
}

// indirect stops the host reader from writing to the link: its frames
// go to the loop.
func (r *run) indirect() {
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
func (r *run) takeWaiting() {
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
func (r *run) finish() (int, error) {
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
func (r *run) drain(l *link, hurry <-chan struct{}) {
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
func (r *run) hostGone() (int, error) {
	l := r.link
	err := l.pumpErr
	r.indirect()
	r.b.Logger.Warn("the host stopped reading; ending the session", "err", err)
	l.endInput()
	r.b.stopRemote(l.remote, closedChan)
	r.close(l)
	return ExitStatus, err
}

// closedChan is a closed channel: a wait that is hurried from the start.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// answerPending answers every request in flight on a link that has ended.
func (r *run) answerPending(code int, msg string) int {
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
func (r *run) answerQueue(code int, msg string) {
	for i := range r.queue {
		r.host.answer(&r.queue[i], code, msg)
	}
	r.queue, r.queuedBytes = nil, 0
}

// readHost reads the host's frames and answers the ones that are not JSON.
// It writes the others to the live link itself when it may (the path of
// every frame in a working session), and hands them to the loop otherwise.
// It closes frames at the end of input.
func (r *run) readHost(in io.Reader, frames chan<- hostFrame) {
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
			b.Logger.Debug("the frame that is not JSON", "start", preview(frame))
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
		frames <- f
	}
}

// hostTooLarge handles a frame from the host over the limit, which the
// reader discarded. A request gets an error (a frame whose id cannot be
// read, one with id null); the host's answer to a request of the server's
// becomes an error answer, returned to be sent in its place.
func (r *run) hostTooLarge(tl *jsonrpc.FrameTooLargeError) (answer []byte, ok bool) {
	env, found := jsonrpc.HeadEnvelope(tl.Head)
	r.b.Logger.Warn("the host sent a frame over --max-frame; discarded it", "bytes", tl.Size, "limit", tl.Limit, "kind", env.Kind, "id", string(env.ID))
	r.b.Logger.Debug("the frame over the limit", "start", preview(tl.Head))
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
func (r *run) sendDirect(f hostFrame, more bool) *sender {
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

// copyStderr passes the remote's stderr on, line by line, prefixed, cut
// and rate-bounded as stderrlines.Lines does. It never waits on more than
// Stderr: a copy that stopped would stop the channel, whose stderr shares
// its window with stdout.
func (b *Bridge) copyStderr(r io.Reader) {
	var msg []byte
	stderrlines.Lines{
		Line: func(text []byte, cut int64) {
			msg = append(append(msg[:0], "m2m-ssh: remote: "...), text...)
			if cut > 0 {
				msg = fmt.Appendf(msg, " [cut: %d more bytes]", cut)
			}
			b.Stderr.Write(append(msg, '\n'))
		},
		Dropped: func(n int) {
			fmt.Fprintf(b.Stderr, "m2m-ssh: warning: %d lines of the remote's stderr dropped: more than %d a second\n", n, stderrlines.Rate)
		},
	}.Read(r)
}

func exitStatus(err error) (int, error) {
	var ee *transport.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.Status, nil
	}
	return ExitStatus, nil
}

// refuse answers the host's requests with the error that ended the
// session, or kept it from starting. It waits FailGrace for the first
// request and keeps answering until the host has been quiet for FailGrace:
// a client that probes with one method and falls back to another
// (server/discover, then initialize) gets an answer to each.
// Once ctx is done (a signal) it answers only the frames already handed
// over, and returns.
func (b *Bridge) refuse(ctx context.Context, frames <-chan hostFrame, host *hostWriter, err error) {
	if frames == nil {
		return
	}
	msg := "m2m-ssh: " + err.Error()
	if h := verdict.Hint(err); h != "" {
		msg += " (hint: " + h + ")"
	}
	timer := time.NewTimer(b.FailGrace)
	defer timer.Stop()
	for {
		var f hostFrame
		var ok bool
		if ctx.Err() != nil {
			select {
			case f, ok = <-frames:
			default:
				return
			}
		} else {
			select {
			case f, ok = <-frames:
			case <-timer.C:
				return
			case <-ctx.Done():
				continue
			}
		}
		if !ok {
			return
		}
		if ids, _ := f.requests(); len(ids) == 0 {
			continue
		}
		host.answer(&f, CodeUnavailable, msg)
		timer.Reset(b.FailGrace)
	}
}

// preview is the start of a frame, for logs.
func preview(frame []byte) string {
	const max = 120
	frame = bytes.TrimRight(frame, "\r\n")
	if len(frame) > max {
		return string(frame[:max]) + "…"
	}
	return string(frame)
}
