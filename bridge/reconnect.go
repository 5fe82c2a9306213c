package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// lose handles the loss of the live link while the host still talks: the
// requests in flight are answered, the remote's requests are forgotten,
// and a goroutine starts to restore the session. done reports that the
// session is over instead, with its exit code and error.
func (r *run) lose() (done bool, code int, err error) {
	l := r.link
	r.indirect()
	status := l.status(statusWait)
	unsent := r.close(l)
	r.link = nil
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

func describeEnd(status error) string {
	var ee *transport.ExitError
	switch {
	case status == nil:
		return "the remote MCP server exited"
	case errors.As(status, &ee):
		return "the remote MCP server " + ee.Outcome()
	}
	return "the connection closed"
}

// rawJSON is JSON text to marshal as is.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

// reconnected is the outcome of restoring a session.
type reconnected struct {
	a     *attempt
	tries int // tries in a row that did not bring a working session
	err   error
}

func (r *run) startReconnect(cause string) {
	ctx, cancel := context.WithCancel(r.ctx)
	r.cancelReconnect = cancel
	ch := make(chan reconnected, 1)
	r.reconnected = ch
	script := r.books.hs.script()
	failures := r.failures
	go func() { ch <- r.b.reconnect(ctx, script, failures, cause) }()
}

// reconnect tries to open a session and replay the handshake until it
// works, with exponential backoff, up to Retries tries in a row.
func (b *Bridge) reconnect(ctx context.Context, script replay, failures int, cause string) reconnected {
	err := errors.New(cause)
	for try := failures; try < b.Retries; try++ {
		wait := time.NewTimer(b.backoff(try))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return reconnected{tries: try, err: context.Cause(ctx)}
		}
		b.Logger.Debug("reconnecting", "target", b.Name, "try", try+1)
		var a *attempt
		a, err = b.attempt(ctx, script)
		if err == nil {
			if !a.proven {
				// A session with nothing to replay proves itself
				// by talking; until then this try counts.
				try++
			}
			return reconnected{a: a, tries: try}
		}
		if ctx.Err() != nil {
			return reconnected{tries: try, err: context.Cause(ctx)}
		}
		b.Logger.Warn("reconnecting failed", "target", b.Name, "try", try+1, "of", b.Retries, "err", err)
		if verdict.Permanent(err) {
			return reconnected{tries: try + 1, err: err}
		}
	}
	return reconnected{tries: max(failures, b.Retries), err: err}
}

// backoff is the wait before try (from 0): BackoffMin doubled for each
// try before it, at most BackoffMax, less up to a fifth at random so that
// many clients of a restarted server do not all come back at once.
func (b *Bridge) backoff(try int) time.Duration {
	d := b.BackoffMax
	if try < 32 {
		d = min(b.BackoffMin<<try, b.BackoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// attempt is a new session, opened and handshaken the way the host opened
// the lost one.
type attempt struct {
	remote  transport.Remote
	fr      *remoteFrames
	prelude [][]byte // frames the remote sent before the replay was done
	changed []string // list_changed notifications to send the host
	proven  bool     // the remote answered the replayed handshake
}

// attempt connects and replays the handshake, swallowing the responses to
// it. The replay is bounded by ReconnectTimeout: a server that does not
// answer is a failed try.
func (b *Bridge) attempt(ctx context.Context, script replay) (*attempt, error) {
	remote, err := b.Connect(ctx)
	if err != nil {
		return nil, err
	}
	b.Logger.Debug("connected; replaying the handshake", "target", b.Name, "requests", len(script.requests))
	a := &attempt{remote: remote, fr: newRemoteFrames(remote)}
	a.fr.Max = b.MaxFrame
	if script.empty() {
		return a, nil
	}
	timer := time.AfterFunc(b.ReconnectTimeout, func() { remote.Close() })
	stop := context.AfterFunc(ctx, func() { remote.Close() })
	err = a.replay(script)
	// Whether or not the replay got through, a session closed by the
	// timer or ctx is of no use.
	timerStopped, ctxStopped := timer.Stop(), stop()
	if timerStopped && ctxStopped {
		if err == nil {
			return a, nil
		}
	} else if err == nil {
		err = fmt.Errorf("replaying the handshake took longer than %s", b.ReconnectTimeout)
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}
	remote.Close()
	return nil, err
}

func (a *attempt) replay(script replay) error {
	for _, req := range script.requests {
		if _, err := a.remote.Write(req.frame); err != nil {
			return fmt.Errorf("replaying %s: %w", req.method, err)
		}
		if err := a.await(req); err != nil {
			return fmt.Errorf("replaying %s: %w", req.method, err)
		}
	}
	if script.initialized != nil {
		if _, err := a.remote.Write(script.initialized); err != nil {
			return fmt.Errorf("replaying %s: %w", methodInitialized, err)
		}
	}
	a.proven = true
	return nil
}

// await reads the remote's frames until the response to req; the frames
// before it are kept to pass on.
func (a *attempt) await(req replayed) error {
	for {
		frame, err := a.fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A server that crashes at start ends here: say how.
				return errors.New(describeEnd(waitStatus(a.remote, statusWait)) + " before answering")
			}
			return err
		}
		env, perr := jsonrpc.ParseEnvelope(frame)
		if perr != nil || env.Kind != jsonrpc.KindResponse || !bytes.Equal(env.ID, req.id) {
			a.prelude = append(a.prelude, bytes.Clone(frame))
			continue
		}
		changed, err := handshakeResult(frame)
		if err != nil {
			return err
		}
		for _, m := range changed {
			if !slices.Contains(a.changed, m) {
				a.changed = append(a.changed, m)
			}
		}
		return nil
	}
}

// restored takes the outcome of reconnecting: a live link, or the end.
func (r *run) restored(res reconnected) (done bool, code int, err error) {
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

// ReconnectError is a lost session that could not be restored.
type ReconnectError struct {
	Alias string
	Tries int
	Err   error // the last try's failure
}

func (e *ReconnectError) Error() string {
	return fmt.Sprintf("bridge: lost the session with %s and gave up after %d tries to restore it: %v", e.Alias, e.Tries, e.Err)
}

func (e *ReconnectError) Unwrap() error { return e.Err }

func (e *ReconnectError) Hint() string {
	if h := verdict.Hint(e.Err); h != "" {
		return h
	}
	return fmt.Sprintf("check that 'ssh %s' works and that the remote MCP server starts and stays up (its stderr is logged with the prefix 'remote:'); then restart the MCP server in the host", e.Alias)
}

// giveUp ends a session that could not be restored: everything waiting is
// answered, and so is every request the host sends until it is quiet.
func (r *run) giveUp(res reconnected) (int, error) {
	err := &ReconnectError{Alias: r.b.Name, Tries: res.tries, Err: res.err}
	r.b.Logger.Error("giving up", "target", r.b.Name, "tries", res.tries, "err", res.err)
	r.answerQueue(CodeUnavailable, "m2m-ssh: "+err.Error()+"; the request was not sent")
	r.b.refuse(r.ctx, r.frames, r.host, err)
	return ExitStatus, err
}

// abandon ends a session while it is being restored: the host closed
// stdin, or a signal came.
func (r *run) abandon(why string) (int, error) {
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
func (r *run) nextExpiry() (time.Duration, bool) {
	for i := range r.queue {
		if ids, _ := r.queue[i].requests(); len(ids) > 0 {
			return time.Until(r.queue[i].at.Add(r.b.ReconnectTimeout)), true
		}
	}
	return 0, false
}

// expire answers the requests that have waited ReconnectTimeout for the
// session to come back, and takes them out of the queue.
func (r *run) expire() {
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
