package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

	frames <-chan hostFrame // nil once the host closed stdin
	eof    bool
	queue  queue // read from the host, not yet handed to a link

	books   books
	strayed atomic.Bool

	// gate lets the host reader write its frames to the live link itself
	// while nothing waits for it, and sends them to the loop otherwise.
	gate gate
	// backlog tells the host reader when the frames held for the loop
	// reach maxQueued, so that it waits before it reads another.
	backlog backlog
	stop    stopper

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
			case len(r.queue.frames) > 0:
				r.deliver(l)
				delivered = l.delivered
			case r.eof:
				return r.finish()
			case !l.direct:
				r.tryDirect(l)
			}
		} else if d, ok := r.queue.nextExpiry(r.b.ReconnectTimeout); ok {
			expiry.Reset(d)
			expired = expiry.C
		}
		frames := r.frames
		held := r.queue.bytes
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
			r.gate.received()
			if r.link == nil {
				f.at = time.Now()
			}
			r.queue.push(f)
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
			return r.shutdown()
		}
	}
}

// shutdown ends the session for a signal, whatever it was doing.
func (r *session) shutdown() (int, error) {
	r.b.Logger.Info("ending the session", "reason", context.Cause(r.ctx))
	r.indirect()
	r.takeWaiting()
	if r.link == nil {
		return r.abandon("m2m-ssh is shutting down")
	}
	r.queue.answer(r.host, CodeUnavailable, "m2m-ssh: shutting down; the request was not sent")
	return r.finish()
}

// deliver writes the frames that waited for the link, in a goroutine: a
// remote that does not read cannot hold the loop.
func (r *session) deliver(l *link) {
	frames, n := r.queue.take()
	l.deliveringBytes = n
	l.delivering = true
	go func() {
		l.send.deliver(&r.books, frames)
		l.delivered <- struct{}{}
	}()
}

// tryDirect lets the host reader write to the live link itself, once
// every frame it handed to the loop has been written.
func (r *session) tryDirect(l *link) {
	if r.gate.open(l.send) {
		l.direct = true
	}
}

// indirect stops the host reader from writing to the link: its frames
// go to the loop.
func (r *session) indirect() {
	r.gate.shut()
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
			r.gate.received()
			r.queue.push(f)
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
	status := r.stop.stop(l.remote, hurry)
	if status != transport.ErrNoExitStatus {
		r.drain(l, hurry)
	}
	r.close(l)
	code, msg := CodeConnectionLost, fmt.Sprintf("m2m-ssh: the remote MCP server on %s ended before answering; the request may or may not have run", r.b.Name)
	var err error
	if l.noCommand.Load() && !l.heard.Load() {
		err = &NoCommandError{Alias: r.b.Name}
		code, msg = CodeUnavailable, refusal(err)
	}
	r.answerPending(code, msg)
	// A frame the host reader was still taking in when a signal came
	// reached the loop after it stopped receiving.
	r.takeWaiting()
	r.queue.answer(r.host, CodeUnavailable, "m2m-ssh: shutting down; the request was not sent")
	exit, _ := exitStatus(status)
	return exit, err
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
	r.stop.stop(l.remote, closedChan)
	r.close(l)
	return ExitStatus, err
}

// answerPending answers every request in flight on a link that has ended.
func (r *session) answerPending(code int, msg string) int {
	n := 0
	for _, ids := range r.books.unanswered() {
		n += len(ids)
		if len(ids) == 1 {
			r.host.frame(jsonrpc.ErrorFrame(ids[0], code, msg, nil))
		} else {
			r.host.frame(jsonrpc.ErrorBatch(ids, code, msg))
		}
	}
	return n
}

// start runs a link over remote, whose frames fr reads. prelude are frames
// the remote sent during a replayed greeting, to pass on first.
func (r *session) start(remote transport.Remote, fr *remoteFrames, prelude [][]byte) *link {
	l := &link{
		s:         r,
		remote:    remote,
		send:      &sender{remote: remote, w: bufio.NewWriterSize(remote, remoteBuffer), failed: make(chan struct{})},
		delivered: make(chan struct{}, 1),
		pumped:    make(chan struct{}),
		stderr:    make(chan struct{}),
		ended:     make(chan struct{}),
		shell:     r.lostAt.IsZero() && r.b.LoginShell != nil && r.b.LoginShell(),
	}
	go func() {
		defer close(l.pumped)
		l.pumpErr = l.pump(fr, prelude)
	}()
	go func() {
		defer close(l.stderr)
		r.b.copyStderr(remote.Stderr(), l.watchShell)
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
	if status != transport.ErrNoExitStatus {
		// The program ended: its last lines of stderr, which may say
		// why (a shell's error), are read before the verdict. Its
		// channel has closed, so they are in memory.
		waitClosed(l.stderr, statusWait)
	}
	var refused *transport.ChannelError
	if r.lostAt.IsZero() && (errors.As(status, &refused) || errors.As(l.pumpErr, &refused)) {
		return r.neverStarted(unsent, refused)
	}
	if l.noCommand.Load() && !l.heard.Load() {
		return r.neverStarted(unsent, &NoCommandError{Alias: r.b.Name})
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
	for _, id := range r.books.lost() {
		// The host may be asking its user something for the lost
		// server: it can stop.
		r.host.frame(jsonrpc.Notification(methodCancelled, map[string]any{
			"requestId": rawJSON(id),
			"reason":    fmt.Sprintf("m2m-ssh: the connection to %s was lost", r.b.Name),
		}))
	}
	r.queue.requeue(unsent, r.lostAt)

	if r.b.Retries < 0 || r.eof || r.ctx.Err() != nil {
		r.b.Logger.Error(what, "target", r.b.Name, "answered", n)
		code, _ := exitStatus(status)
		err := fmt.Errorf("the connection to %s was lost (%s)", r.b.Name, what)
		r.queue.answer(r.host, CodeUnavailable, "m2m-ssh: "+err.Error()+"; the request was not sent")
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
	r.queue.answer(r.host, CodeUnavailable, msg)
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
	script := r.books.script()
	failures := r.failures
	go func() { ch <- restorer{r.b}.run(ctx, script, failures, cause) }()
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
	r.b.Logger.Info("reconnected", "target", r.b.Name, "took", time.Since(r.lostAt).Round(time.Millisecond), "waiting", len(r.queue.frames))
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
	r.queue.answer(r.host, CodeUnavailable, "m2m-ssh: "+err.Error()+"; the request was not sent")
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
			r.stop.stop(res.a.remote, r.ctx.Done())
			res.a.remote.Close()
		}
		r.reconnected = nil
	}
	err := fmt.Errorf("the connection to %s was lost, and %s before it was restored", r.b.Name, why)
	r.queue.answer(r.host, CodeUnavailable, "m2m-ssh: "+err.Error()+"; the request was not sent")
	return ExitStatus, err
}

// expire answers the requests that have waited ReconnectTimeout for the
// session to come back, and takes them out of the queue.
func (r *session) expire() {
	msg := fmt.Sprintf("m2m-ssh: the connection to %s was lost and is not back after %s; the request was not sent", r.b.Name, r.b.ReconnectTimeout)
	r.queue.expire(r.host, r.b.ReconnectTimeout, CodeUnavailable, msg)
}

// rawJSON is JSON text to marshal as is.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

// waitClosed waits for c to close, at most d.
func waitClosed(c <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
	case <-t.C:
	}
}
