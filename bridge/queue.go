package bridge

import "time"

// queue holds the host's frames that wait for a link: read while the
// session was away or the gate was shut, or given to a link that was lost
// before it wrote them. It is the loop's alone.
type queue struct {
	frames []hostFrame
	bytes  int // the size of frames, bounded by maxQueued
}

func (q *queue) push(f hostFrame) {
	q.frames = append(q.frames, f)
	q.bytes += len(f.data)
}

// take empties the queue and returns what it held, and its size.
func (q *queue) take() ([]hostFrame, int) {
	frames, n := q.frames, q.bytes
	q.frames, q.bytes = nil, 0
	return frames, n
}

// requeue puts the frames a lost link did not send in front, and counts
// every frame's wait from at, the moment the link was lost.
func (q *queue) requeue(unsent []hostFrame, at time.Time) {
	if len(unsent) > 0 {
		q.frames = append(unsent, q.frames...)
		for _, f := range unsent {
			q.bytes += len(f.data)
		}
	}
	for i := range q.frames {
		q.frames[i].at = at
	}
}

// answer answers every request that waits, and empties the queue.
func (q *queue) answer(host *hostWriter, code int, msg string) {
	for i := range q.frames {
		host.answer(&q.frames[i], code, msg)
	}
	q.frames, q.bytes = nil, 0
}

// nextExpiry is how long until the oldest request waiting has waited
// timeout.
func (q *queue) nextExpiry(timeout time.Duration) (time.Duration, bool) {
	for i := range q.frames {
		if ids, _ := q.frames[i].requests(); len(ids) > 0 {
			return time.Until(q.frames[i].at.Add(timeout)), true
		}
	}
	return 0, false
}

// expire answers the requests that have waited timeout, and takes them
// out of the queue.
func (q *queue) expire(host *hostWriter, timeout time.Duration, code int, msg string) {
	now := time.Now()
	kept := q.frames[:0]
	for i := range q.frames {
		f := &q.frames[i]
		if ids, _ := f.requests(); len(ids) > 0 && !now.Before(f.at.Add(timeout)) {
			host.answer(f, code, msg)
			q.bytes -= len(f.data)
			continue
		}
		kept = append(kept, *f)
	}
	q.frames = kept
}
