package sshtest

import (
	"bytes"
	"sync"
	"time"
)

// Buffer collects the output of a child process or of a logger for a test
// that reads it while it is still written (a strings.Builder there is a
// data race).
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next write; made by WaitFor
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return l.b.Write(p)
}

func (l *Buffer) WriteString(s string) {
	l.Write([]byte(s))
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor waits at most within for s to be written, and reports whether
// it was. A test that reads what another process writes, through a copy
// it does not wait for, waits here: the copy may lag behind every other
// sign that the process wrote it.
func (l *Buffer) WaitFor(s string, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		if bytes.Contains(l.b.Bytes(), []byte(s)) {
			l.mu.Unlock()
			return true
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}
