package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// link is one session with the remote program, on one connection: a
// sender that writes the host's frames to it, a pump that carries its
// frames to the host, and its stderr.
type link struct {
	s      *session // the session the link carries
	remote transport.Remote
	send   *sender
	// delivering is set while a goroutine writes frames that waited for
	// the link; delivered receives when it is done. The loop's alone.
	delivering      bool
	deliveringBytes int // the size of what is being delivered
	delivered       chan struct{}
	direct          bool // the host reader writes to send itself
	// pumped is closed when the pump has ended, pumpErr its error.
	pumped  chan struct{}
	pumpErr error
	stderr  chan struct{}
	heard   atomic.Bool // the remote has said something: it is working
	// shell is set on the first link when the program is the login
	// shell; noCommand once its stderr showed a shell's error, closing
	// once watchShell closed the link for it.
	shell              bool
	noCommand, closing atomic.Bool
	ending             bool // EOF is being sent
	ended              chan struct{}
	// replies carries the bridge's own answers to the remote; the
	// pump's alone, nil until the first.
	replies chan []byte
}

// errHostGone ends a session whose host no longer reads its answers.
var errHostGone = errors.New("the host stopped reading")

// pump carries the remote's frames to the host until the remote's stdout
// ends. Every frame is checked to be JSON first: stdout carries nothing but
// frames the host can parse.
func (l *link) pump(fr *remoteFrames, prelude [][]byte) error {
	// Frames of a burst go to the host in one write; nothing is held
	// back while the pump waits for the remote.
	defer l.s.host.flush()
	defer func() {
		if l.replies != nil {
			close(l.replies)
		}
		l.s.books.refusals(l.s.books.refused())
	}()
	fr.Max = l.s.b.MaxFrame
	for _, f := range prelude {
		if err := l.fromRemote(f); err != nil {
			return err
		}
	}
	for {
		if !fr.Buffered() {
			if err := l.s.host.flush(); err != nil {
				return fmt.Errorf("%w: %v", errHostGone, err)
			}
		}
		frame, err := fr.Next()
		var tl *jsonrpc.FrameTooLargeError
		if errors.As(err, &tl) {
			l.remoteTooLarge(tl)
			continue
		}
		if err != nil {
			return err
		}
		if fr.ended && !jsonrpc.Valid(frame) {
			// A connection cut in the middle of a frame ends the
			// stream as a clean EOF would: the last frame may be a
			// piece of one. Its request is answered as lost.
			l.s.b.Logger.Warn("the remote's output ended in the middle of a frame; dropped it", "bytes", len(frame))
			l.s.b.Logger.Debug("the frame cut short", "start", jsonrpc.Preview(frame))
			continue
		}
		if err := l.fromRemote(frame); err != nil {
			return err
		}
	}
}

// remoteFrames reads the remote's frames and notes when its stream has
// ended, after which the frames still buffered are checked whole.
type remoteFrames struct {
	*jsonrpc.FrameReader
	ended bool
}

func newRemoteFrames(r io.Reader) *remoteFrames {
	rf := &remoteFrames{}
	rf.FrameReader = jsonrpc.NewFrameReader(endReader{r, &rf.ended})
	return rf
}

// endReader sets *ended when r reports the end of its stream.
type endReader struct {
	r     io.Reader
	ended *bool
}

func (e endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		*e.ended = true
	}
	return n, err
}

func (l *link) fromRemote(frame []byte) error {
	if ok, twoIDs := jsonrpc.ValidFrame(frame); !ok || twoIDs {
		l.remoteNotJSON(frame, twoIDs)
		return nil
	}
	env, err := jsonrpc.ParseEnvelope(frame)
	if err != nil {
		l.strayLine(frame)
		return nil
	}
	l.heard.Store(true)
	if env.Kind == jsonrpc.KindBatch {
		frame = l.s.books.remoteBatch(frame, func(env jsonrpc.Envelope) { l.refuseServerRequest(env) })
	} else {
		frame, _ = l.s.books.remoteMessage(env, frame, func(env jsonrpc.Envelope) { l.refuseServerRequest(env) })
	}
	if frame == nil {
		return nil
	}
	if l.s.b.Logger.Enabled(context.Background(), slog.LevelDebug) {
		l.s.b.Logger.Debug("remote → host", "frame", jsonrpc.Preview(frame))
	}
	if err := l.s.host.write(frame, false); err != nil {
		return fmt.Errorf("%w: %v", errHostGone, err)
	}
	return nil
}

// refuseServerRequest answers a request from the server when too many
// wait for the host already.
func (l *link) refuseServerRequest(env jsonrpc.Envelope) {
	if n := l.s.books.refused(); n == 1 {
		l.s.b.Logger.Warn("the remote has too many requests waiting for the host; answering new ones with an error", "waiting", maxServerRequests)
	}
	l.replyRemote(jsonrpc.ErrorFrame(env.ID, CodeUnavailable, fmt.Sprintf(
		"m2m-ssh: %d requests from this server already wait for the host to answer; the request was not passed on", maxServerRequests), nil))
}

// replyQueue bounds the bridge's own answers to the remote waiting to be
// written: the answers to a remote that floods requests and does not read
// are dropped rather than holding the pump.
const replyQueue = 256

// replyRemote writes one of the bridge's own answers to the remote, from
// a goroutine of the link's, so that a remote that does not read cannot
// hold the pump. Called from the pump only.
func (l *link) replyRemote(frame []byte) {
	if l.replies == nil {
		l.replies = make(chan []byte, replyQueue)
		go func() {
			for b := range l.replies {
				// A burst of answers goes in one write.
				l.send.reply(b, len(l.replies) == 0)
			}
			l.send.flush()
		}()
	}
	select {
	case l.replies <- frame:
	default:
		l.s.b.Logger.Debug("dropped an answer to the remote: it does not read")
	}
}

// remoteNotJSON handles a frame from the remote that is not JSON, or whose
// message has two ids (which a host reads differently from the bridge). A
// response whose id can still be read, to a request in flight, is answered
// with an error: the host could not use the server's. Any other such frame
// is dropped.
func (l *link) remoteNotJSON(frame []byte, twoIDs bool) {
	env, err := jsonrpc.ParseEnvelope(frame)
	if err != nil && !twoIDs {
		l.strayLine(frame)
		return
	}
	what := "the remote sent a frame that is not JSON; dropped it"
	if twoIDs {
		what = "the remote sent a message with two ids; dropped it"
	}
	l.s.b.Logger.Warn(what, "kind", env.Kind, "id", string(env.ID), "bytes", len(frame))
	l.s.b.Logger.Debug("the frame that is not JSON", "start", jsonrpc.Preview(frame))
	if env.Kind == jsonrpc.KindResponse && l.s.books.failed(env.ID) {
		l.s.host.write(jsonrpc.ErrorFrame(env.ID, CodeInternalError, fmt.Sprintf(
			"m2m-ssh: the remote MCP server on %s sent a response that is not JSON, or not one JSON-RPC message; the request may or may not have run (hint: the server is broken: its stderr is logged with the prefix 'remote:')", l.s.b.Name), nil), false)
	}
}

// remoteTooLarge handles a frame from the remote over the limit, which the
// reader discarded: the request it answers, or that it carries, gets an
// error.
func (l *link) remoteTooLarge(tl *jsonrpc.FrameTooLargeError) {
	env, ok := jsonrpc.HeadEnvelope(tl.Head)
	l.s.b.Logger.Warn("the remote sent a frame over --max-frame; discarded it", "bytes", tl.Size, "limit", tl.Limit, "kind", env.Kind, "id", string(env.ID))
	l.s.b.Logger.Debug("the frame over the limit", "start", jsonrpc.Preview(tl.Head))
	if !ok {
		return
	}
	l.heard.Store(true)
	switch env.Kind {
	case jsonrpc.KindResponse:
		if l.s.books.failed(env.ID) {
			l.s.host.write(jsonrpc.ErrorFrame(env.ID, CodeInternalError, fmt.Sprintf(
				"m2m-ssh: the remote MCP server on %s answered with %s, over the limit of %s; the answer was discarded (hint: raise --max-frame, or ask for less)",
				l.s.b.Name, frameSize(tl), byteCount(int64(tl.Limit))), nil), false)
		}
	case jsonrpc.KindRequest:
		l.replyRemote(jsonrpc.ErrorFrame(env.ID, CodeInvalidRequest, fmt.Sprintf(
			"m2m-ssh: the request is %s, over m2m-ssh's limit of %s (--max-frame); it was not passed on", frameSize(tl), byteCount(int64(tl.Limit))), nil))
	}
}

// strayLine logs a line from the remote that is not JSON-RPC; the first
// gets a warning with the likely cause.
func (l *link) strayLine(frame []byte) {
	if l.s.strayed.CompareAndSwap(false, true) {
		l.s.b.Logger.Warn("the remote wrote a line that is not JSON-RPC; dropped it", "start", jsonrpc.Preview(frame),
			"hint", "shell start-up files (.bashrc, .profile, motd) that print to stdout corrupt the stream: make them quiet for non-interactive shells")
		return
	}
	l.s.b.Logger.Debug("dropped a line that is not JSON-RPC", "start", jsonrpc.Preview(frame))
}

// endInput sends EOF to the remote once what the host sent is written, in
// a goroutine: a remote that does not read cannot hold the loop.
func (l *link) endInput() {
	if !l.ending {
		l.ending = true
		go func() {
			defer close(l.ended)
			l.send.closeInput()
		}()
	}
}

// status is the remote program's exit status, if it comes within d: a
// program that exited sends it just before its channel closes, while a
// lost connection never delivers one.
func (l *link) status(d time.Duration) error { return waitStatus(l.remote, d) }

// waitStatus is remote's exit status, or ErrNoExitStatus when none comes
// within d.
func waitStatus(remote transport.Remote, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- remote.Wait() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return transport.ErrNoExitStatus
	}
}

// describeEnd says how a link ended, from the program's exit status.
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
