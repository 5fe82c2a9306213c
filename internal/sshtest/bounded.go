package sshtest

import (
	"io"
	"testing"
	"time"
)

// Within runs f and fails the test if it has not returned after d, so that
// a test of "this never blocks" fails rather than hangs.
func Within[T any](t testing.TB, d time.Duration, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
		panic("unreachable")
	}
}

// EndlessLine reads as n bytes that are not a newline, then EOF: a line
// longer than any bound, made as it is read.
func EndlessLine(n int64) io.Reader { return &endlessLine{n} }

type endlessLine struct{ n int64 }

func (e *endlessLine) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.n, 32<<10)]
	for i := range p {
		p[i] = 'x'
	}
	e.n -= int64(len(p))
	return len(p), nil
}
