package bridge

import (
	"bufio"
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
)

// link is one session with the remote program, on one connection: a
// sender that writes the host's frames to it, a pump that carries its
// frames to the host, and its stderr.
type link struct {
	remote Remote
	send   *sender
	// delivering is set while a goroutine writes frames that waited for
	// the link; delivered receives when it is done. The loop's alone.
	delivering bool
	delivered  chan struct{}
	direct     bool // the host reader writes to send itself
	// pumped is closed when the pump has ended, pumpErr its error.
	pumped  chan struct{}
	pumpErr error
	stderr  chan struct{}
	heard   atomic.Bool // the remote has said something: it is working
	ending  bool        // EOF is being sent
	ended   chan struct{}
}

// errHostGone ends a session whose host no longer reads its answers.
var errHostGone = errors.New("bridge: the host stopped reading")

// start runs a link over remote, whose frames fr reads. prelude are frames
// the remote sent during a replayed handshake, to pass on first.
func (r *run) start(remote Remote, fr *remoteFrames, prelude [][]byte) *link {
	l := &link{
		remote:    remote,
		send:      &sender{remote: remote, w: bufio.NewWriterSize(remote, 64<<10), failed: make(chan struct{})},
		delivered: make(chan struct{}, 1),
		pumped:    make(chan struct{}),
		stderr:    make(chan struct{}),
		ended:     make(chan struct{}),
	}
	go func() {
		defer close(l.pumped)
		l.pumpErr = r.pump(l, fr, prelude)
	}()
	go func() {
		defer close(l.stderr)
		r.b.copyStderr(remote.Stderr())
	}()
	return l
}

// sender writes the host's frames to one link's remote: the host reader
// writes each frame itself while the link is live and nothing waits for
// it, and a goroutine of the loop's writes the frames that waited. mu
// keeps them in order, and puts each frame on the books as it is written.
type sender struct {
	mu     sync.Mutex
	remote Remote
	w      *bufio.Writer
	done   bool        // EOF sent, or the link closed: nothing more is written
	err    error       // the first failure to write
	unsent []hostFrame // frames given to deliver, not written when it failed
	failed chan struct{}
}

// send writes one frame, and flushes unless more frames follow at once. It
// reports false when the sender takes no more frames: its link is lost or
// ending, and nothing was done with f. A frame whose write fails is on the
// books, and answered as lost with the link.
func (s *sender) send(r *run, f hostFrame, flush bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.err != nil {
		return false
	}
	if data := r.toRemote(f); data != nil {
		if _, err := s.w.Write(data); err != nil {
			s.fail(err)
		}
	}
	if flush {
		s.flushLocked()
	}
	return true
}

// deliver writes frames that waited for the link, and flushes. Frames it
// cannot write are kept in unsent for the next link.
func (s *sender) deliver(r *run, frames []hostFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range frames {
		if s.done || s.err != nil {
			s.unsent = append(s.unsent, frames[i:]...)
			return
		}
		if data := r.toRemote(f); data != nil {
			if _, err := s.w.Write(data); err != nil {
				s.fail(err)
			}
		}
	}
	s.flushLocked()
}

func (s *sender) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *sender) flushLocked() {
	if s.err == nil && !s.done {
		if err := s.w.Flush(); err != nil {
			s.fail(err)
		}
	}
}

// fail records the first failure, which loses the link.
func (s *sender) fail(err error) {
	if s.err == nil {
		s.err = err
		close(s.failed)
	}
}

// closeInput flushes and sends EOF; nothing more is written after it.
func (s *sender) closeInput() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	if s.err == nil && !s.done {
		if err := s.remote.CloseWrite(); err != nil {
			s.fail(err)
		}
	}
	s.done = true
}

// shut ends the sender of a closed link and returns the frames it was
// given but did not write.
func (s *sender) shut() []hostFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	unsent := s.unsent
	s.unsent = nil
	return unsent
}

// toRemote puts one host frame on the books and returns the bytes to send,
// or nil when the frame is dropped: an answer to a request of a lost
// connection, or the cancellation of a request that is not in flight.
func (r *run) toRemote(f hostFrame) []byte {
	if f.env.Kind != KindBatch {
		msg, changed := r.hostMessage(f.env, f.data, 0)
		if changed && msg != nil {
			msg = append(msg, '\n')
		}
		return msg
	}
	r.batches++
	elems := make([][]byte, 0, len(f.elems))
	edited := false
	for _, e := range f.elems {
		msg, changed := r.hostMessage(e.env, e.raw, r.batches)
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
	return joinBatch(elems)
}

// hostMessage handles one message from the host; changed reports that the
// bytes returned are not msg as it came (which for a frame ends in '\n').
func (r *run) hostMessage(env Envelope, msg []byte, batch uint64) (out []byte, changed bool) {
	switch env.Kind {
	case KindRequest:
		r.pending.add(env.ID, batch)
		switch string(env.Method) {
		case methodInitialize, methodDiscover:
			r.hs.ask(env, msg)
		}
	case KindNotification:
		switch string(env.Method) {
		case methodInitialized:
			r.hs.notified(msg)
		case methodCancelled:
			// The server never saw a request lost with a connection,
			// or has answered it already.
			if id := cancelledID(msg); id == nil || !r.pending.has(id) {
				r.b.Logger.Debug("dropped a cancellation of a request not in flight", "id", string(id))
				return nil, true
			}
		}
	case KindResponse:
		remoteID, ok := r.server.answer(env.ID)
		if !ok {
			r.b.Logger.Debug("dropped the host's answer to a request of a lost connection", "id", string(env.ID))
			return nil, true
		}
		if remoteID != nil {
			return bytes.TrimSuffix(spliceID(msg, env.ID, remoteID), []byte("\n")), true
		}
	}
	return msg, false
}

// pump carries the remote's frames to the host until the remote's stdout
// ends. Lines that are not JSON-RPC are logged and dropped: stdout carries
// nothing but frames.
func (r *run) pump(l *link, fr *remoteFrames, prelude [][]byte) error {
	// Frames of a burst go to the host in one write; nothing is held
	// back while the pump waits for the remote.
	defer r.host.flush()
	for _, f := range prelude {
		if err := r.fromRemote(l, f); err != nil {
			return err
		}
	}
	for {
		if !fr.Buffered() {
			if err := r.host.flush(); err != nil {
				return fmt.Errorf("%w: %v", errHostGone, err)
			}
		}
		frame, err := fr.Next()
		if err != nil {
			return err
		}
		if fr.ended && !json.Valid(frame) {
			// A connection cut in the middle of a frame ends the
			// stream as a clean EOF would: the last frame may be a
			// piece of one. Its request is answered as lost.
			r.b.Logger.Warn("the remote's output ended in the middle of a frame; dropped it", "bytes", len(frame))
			r.b.Logger.Debug("the frame cut short", "start", preview(frame))
			continue
		}
		if err := r.fromRemote(l, frame); err != nil {
			return err
		}
	}
}

// remoteFrames reads the remote's frames and notes when its stream has
// ended, after which the frames still buffered are checked whole.
type remoteFrames struct {
	*FrameReader
	ended bool
}

func newRemoteFrames(r io.Reader) *remoteFrames {
	rf := &remoteFrames{}
	rf.FrameReader = NewFrameReader(endReader{r, &rf.ended})
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

func (r *run) fromRemote(l *link, frame []byte) error {
	env, err := ParseEnvelope(frame)
	if err != nil {
		r.strayLine(frame)
		return nil
	}
	l.heard.Store(true)
	if env.Kind == KindBatch {
		frame = r.remoteBatch(frame)
	} else {
		frame, _ = r.remoteMessage(env, frame)
	}
	if r.b.Logger.Enabled(context.Background(), slog.LevelDebug) {
		r.b.Logger.Debug("remote → host", "frame", preview(frame))
	}
	if err := r.host.write(frame, false); err != nil {
		return fmt.Errorf("%w: %v", errHostGone, err)
	}
	return nil
}

// remoteBatch puts each message of a batch from the remote on the books,
// and gives its requests the ids the host is to see.
func (r *run) remoteBatch(frame []byte) []byte {
	elems, err := Elements(frame)
	if err != nil {
		return frame
	}
	edited := false
	for i, e := range elems {
		env, err := ParseEnvelope(e)
		if err != nil {
			continue
		}
		var changed bool
		elems[i], changed = r.remoteMessage(env, e)
		edited = edited || changed
	}
	if !edited {
		return frame
	}
	return joinBatch(elems)
}

// remoteMessage puts one message from the remote on the books: a response
// ends a request in flight, a request from the server gets the id the host
// is to see. changed reports that the bytes returned are not msg.
func (r *run) remoteMessage(env Envelope, msg []byte) (out []byte, changed bool) {
	switch env.Kind {
	case KindResponse:
		r.pending.done(env.ID)
		r.hs.answered(env.ID, env.Error)
	case KindRequest:
		if id := r.server.add(env.ID); id != nil {
			return spliceID(msg, env.ID, id), true
		}
	}
	return msg, false
}

// strayLine logs a line from the remote that is not JSON-RPC; the first
// gets a warning with the likely cause.
func (r *run) strayLine(frame []byte) {
	if r.strayed.CompareAndSwap(false, true) {
		r.b.Logger.Warn("the remote wrote a line that is not JSON-RPC; dropped it", "start", preview(frame),
			"hint", "shell start-up files (.bashrc, .profile, motd) that print to stdout corrupt the stream: make them quiet for non-interactive shells")
		return
	}
	r.b.Logger.Debug("dropped a line that is not JSON-RPC", "start", preview(frame))
}

// close ends a link that is lost or done with, and returns the frames it
// was given but did not send. When it returns the connection is closed and
// nothing more goes on the books for it. The host reader no longer writes
// to it directly: r.indirect was called.
func (r *run) close(l *link) []hostFrame {
	l.remote.Close()
	if l.delivering {
		<-l.delivered
		l.delivering = false
	}
	if l.ending {
		<-l.ended
	}
	unsent := l.send.shut()
	<-l.pumped
	return unsent
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

// waitStatus is remote's exit status, or errNoExitStatus when none comes
// within d.
func waitStatus(remote Remote, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- remote.Wait() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return errNoExitStatus
	}
}
