package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// it also bounds each replayed greeting (default 30 s).
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
	// LoginShell, when set, reports whether the first connect started
	// the user's login shell (no remote command, no RemoteCommand): a
	// shell's error on its stderr then ends the session with
	// NoCommandError.
	LoginShell func() bool

	// schedules are the waits of ending a remote program; tests
	// shorten them.
	schedules schedules
	// now is the clock of the stderr rate, nil for time.Now; a test
	// stops it. A field, not a global: a bridge of an earlier test may
	// still be copying stderr while the next test runs.
	now func() time.Time
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

// maxQueued is how many bytes of the host's frames the bridge holds, queued
// or being delivered, before it stops taking more: a remote that reads
// slowly, or a session being restored, holds the host back rather than
// filling memory. With the frame the reader has handed over (the channel
// to the loop holds none) and the one in its buffer, the host's frames
// never take more than 3 × MaxFrame + maxQueued, whatever the host sends.
// A few MiB are thousands of ordinary requests.
const maxQueued = 4 << 20

// Run bridges in (the host's stdin) and out (its stdout) to the remote
// until the host closes stdin or ctx ends, restoring the session when the
// connection or the remote program is lost. It returns the remote program's
// exit status, or ExitStatus and the error that kept the session from
// running.
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) (int, error) {
	b.defaults()
	r := &session{b: b, ctx: ctx, host: &hostWriter{w: out}}
	r.books.log = b.Logger
	r.stop = stopper{schedules: b.schedules, log: b.Logger, name: b.Name}
	frames := make(chan hostFrame) // no buffer: see maxQueued
	r.frames = frames
	reader := &hostReader{log: b.Logger, maxFrame: b.MaxFrame, ctx: ctx, host: r.host, books: &r.books, gate: &r.gate, backlog: &r.backlog}
	go reader.run(in, frames)

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

// closedChan is a closed channel: a wait that is hurried from the start.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// copyStderr passes the remote's stderr on, line by line, prefixed, cut
// and rate-bounded as stderrlines.Lines does. It never waits on more than
// Stderr: a copy that stopped would stop the channel, whose stderr shares
// its window with stdout.
func (b *Bridge) copyStderr(r io.Reader, watch func(text []byte)) {
	var msg []byte
	stderrlines.Lines{
		Line: func(text []byte, cut int64) {
			msg = append(append(msg[:0], "m2m-ssh: remote: "...), text...)
			if cut > 0 {
				msg = fmt.Appendf(msg, " [cut: %d more bytes]", cut)
			}
			b.Stderr.Write(append(msg, '\n'))
			watch(text)
		},
		Dropped: func(n int) {
			fmt.Fprintf(b.Stderr, "m2m-ssh: warning: %d lines of the remote's stderr dropped: more than %d a second\n", n, stderrlines.Rate)
		},
		Now: b.now,
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

// refusal is what the host's requests are answered with when err kept the
// session from starting: the error and its hint.
func refusal(err error) string {
	msg := "m2m-ssh: " + err.Error()
	if h := verdict.Hint(err); h != "" {
		msg += " (hint: " + h + ")"
	}
	return msg
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
	msg := refusal(err)
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
