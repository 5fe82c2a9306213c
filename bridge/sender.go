package bridge

import (
	"bufio"
	"sync"

	"github.com/machine-to-machine/m2m-ssh/transport"
)

// remoteBuffer is the size of the buffer that gathers a burst of the
// host's frames into one write to the channel, as hostBuffer does the
// other way.
const remoteBuffer = 64 << 10

// sender writes the host's frames to one link's remote: the host reader
// writes each frame itself while the link is live and nothing waits for
// it, and a goroutine of the loop's writes the frames that waited. mu
// keeps them in order, and puts each frame on the books as it is written.
type sender struct {
	mu     sync.Mutex
	remote transport.Remote
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
func (s *sender) send(bk *books, f hostFrame, flush bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.err != nil {
		return false
	}
	if data := bk.toRemote(f); data != nil {
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
func (s *sender) deliver(bk *books, frames []hostFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range frames {
		if s.done || s.err != nil {
			s.unsent = append(s.unsent, frames[i:]...)
			return
		}
		if data := bk.toRemote(f); data != nil {
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

// reply writes one frame of the bridge's own, and flushes unless more
// follow at once.
func (s *sender) reply(b []byte, flush bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done || s.err != nil {
		return
	}
	if _, err := s.w.Write(b); err != nil {
		s.fail(err)
	}
	if flush {
		s.flushLocked()
	}
}
