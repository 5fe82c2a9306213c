package sshtest

import (
	"bytes"
	"sync"
)

// Buffer collects the output of a child process or of a logger for a test
// that reads it while it is still written (a strings.Builder there is a
// data race).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
