// Package logsink is where m2m-ssh's diagnostics go: a writer in front of
// stderr or the log file that never blocks the bridge and never fails it.
// A host may leave m2m-ssh's stderr unread (a full pipe) or closed (EPIPE);
// either way the session goes on, and only the log suffers, with a count of
// what it lost.
package logsink

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
)

// MaxBuffered bounds the bytes held for a sink that is slow or not read:
// a burst of a few thousand log lines rides it out, and beyond it the
// reader has stopped, so lines are dropped rather than memory spent.
const MaxBuffered = 256 << 10

// Writer buffers whole writes (each a log line, or a few) up to
// MaxBuffered and writes them to its sink from one goroutine. A write
// that does not fit is dropped and counted, and once the sink takes
// writes again a line says how many were dropped. After the sink fails
// (EPIPE: the reader is gone) everything is discarded.
type Writer struct {
	w    io.Writer
	wake chan struct{} // has a value when there is work for the drainer

	mu      sync.Mutex
	buf     []byte // waiting to be written
	spare   []byte // the buffer the drainer last wrote, for reuse
	dropped int    // lines dropped since the last note of it
	busy    bool   // the drainer is writing
	failed  error  // the sink's first error: nothing more is written
	flushed chan struct{}
}

// New returns a Writer in front of w and starts its drainer, which lives
// as long as the process: it may be stuck in a write to a pipe nobody
// reads, which nothing can cancel.
func New(w io.Writer) *Writer {
	s := &Writer{w: w, wake: make(chan struct{}, 1)}
	go s.drain()
	return s
}

// Write takes p whole or drops it; it never blocks and never fails.
func (s *Writer) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	switch {
	case s.failed != nil:
	case len(s.buf)+len(p) > MaxBuffered:
		s.dropped += max(1, bytes.Count(p, []byte{'\n'}))
	default:
		s.buf = append(s.buf, p...)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Err is the sink's failure, after which the log is discarded.
func (s *Writer) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Flush waits up to wait for what is buffered to be written, and reports
// whether it was. A sink nobody reads never holds the caller longer.
func (s *Writer) Flush(wait time.Duration) bool {
	s.mu.Lock()
	if s.idle() {
		s.mu.Unlock()
		return true
	}
	if s.flushed == nil {
		s.flushed = make(chan struct{})
	}
	flushed := s.flushed
	s.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-flushed:
		return true
	case <-timer.C:
		return false
	}
}

// idle reports that nothing is waiting to be written; under mu.
func (s *Writer) idle() bool {
	return s.failed != nil || (!s.busy && len(s.buf) == 0 && s.dropped == 0)
}

func (s *Writer) drain() {
	for {
		s.mu.Lock()
		s.busy = false
		for s.idle() {
			if s.flushed != nil {
				close(s.flushed)
				s.flushed = nil
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		batch, dropped := s.buf, s.dropped
		s.buf, s.spare, s.dropped, s.busy = s.spare[:0], nil, 0, true
		s.mu.Unlock()

		var err error
		if len(batch) > 0 {
			_, err = s.w.Write(batch)
		}
		if err == nil && dropped > 0 {
			// The lines dropped came after the batch, which was
			// waiting when they did not fit.
			_, err = fmt.Fprintf(s.w, "m2m-ssh: warning: %d log lines dropped: the log was not read fast enough\n", dropped)
		}

		s.mu.Lock()
		s.spare = batch[:0]
		if err != nil && s.failed == nil {
			s.failed = err
			s.buf, s.spare, s.dropped = nil, nil, 0
		}
		s.mu.Unlock()
	}
}
