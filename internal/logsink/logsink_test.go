package logsink

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gate is a sink that blocks its writes until opened, as a pipe nobody
// reads does, and tells when the first write arrived.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	out     bytes.Buffer
}

func newGate() *gate { return &gate{entered: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.Write(p)
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

// within fails the test if f does not return within d: a write that
// blocks shows as a failure, not a hung test.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// A sink nobody reads: writes return at once, the ones that do not fit
// are dropped and counted, and once the sink takes writes again the count
// follows what was buffered, before anything written later.
func TestWriterDropsWhatDoesNotFit(t *testing.T) {
	for _, c := range []struct {
		name        string
		write       string // one write; each is a line or a few
		n           int    // writes while the sink is blocked
		fit         int    // of them, how many fit the buffer
		droppedLine int    // lines counted as dropped
	}{
		{"short lines", strings.Repeat("a", 99) + "\n", 5000, MaxBuffered / 100, 5000 - MaxBuffered/100},
		{"three lines a write", "x\ny\nz\n", 100000, MaxBuffered / 6, 3 * (100000 - MaxBuffered/6)},
		{"a write over the bound", strings.Repeat("b", MaxBuffered) + "\n", 3, 0, 3},
		{"a write without a newline counts as a line", strings.Repeat("c", MaxBuffered/2+1), 4, 1, 3},
		{"all fit", "short\n", 10, 10, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGate()
			s := New(g)
			s.Write([]byte("first\n"))
			<-g.entered // the drainer holds "first" and is stuck
			within(t, 5*time.Second, "writing to a blocked sink", func() {
				for range c.n {
					if n, err := s.Write([]byte(c.write)); n != len(c.write) || err != nil {
						t.Errorf("Write = %d, %v; want %d, nil", n, err, len(c.write))
						return
					}
				}
			})
			if got := dropped(s); got != c.droppedLine {
				t.Fatalf("dropped = %d, want %d", got, c.droppedLine)
			}
			if s.Flush(10 * time.Millisecond) {
				t.Fatal("Flush reported a blocked sink written")
			}
			close(g.open)
			if !s.Flush(5 * time.Second) {
				t.Fatal("Flush did not finish once the sink took writes")
			}
			s.Write([]byte("after\n"))
			if !s.Flush(5 * time.Second) {
				t.Fatal("Flush did not finish")
			}
			want := "first\n" + strings.Repeat(c.write, c.fit)
			if c.droppedLine > 0 {
				want += fmt.Sprintf("m2m-ssh: warning: %d log lines dropped: the log was not read fast enough\n", c.droppedLine)
			}
			want += "after\n"
			if got := g.String(); got != want {
				t.Fatalf("sink got %d bytes, want %d; the end: %q, want %q", len(got), len(want), tail(got), tail(want))
			}
			if dropped(s) != 0 {
				t.Fatalf("dropped = %d after the note", dropped(s))
			}
		})
	}
}

func tail(s string) string { return s[max(0, len(s)-120):] }

// failing is a sink that fails every write with err, counting them.
type failing struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (f *failing) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return 0, f.err
}

// A sink that fails (EPIPE: the host closed stderr) ends the log, not the
// writer's callers: writes still succeed, and are discarded without
// touching the sink again.
func TestWriterDiscardsAfterFailure(t *testing.T) {
	for _, err := range []error{syscall.EPIPE, syscall.EIO, syscall.ENOSPC} {
		t.Run(err.Error(), func(t *testing.T) {
			f := &failing{err: err}
			s := New(f)
			s.Write([]byte("one\n"))
			if !s.Flush(5 * time.Second) {
				t.Fatal("Flush of a failed sink did not return at once")
			}
			if s.Err() != err {
				t.Fatalf("Err = %v, want %v", s.Err(), err)
			}
			for range 1000 {
				if n, werr := s.Write([]byte("more\n")); n != 5 || werr != nil {
					t.Fatalf("Write after the failure = %d, %v", n, werr)
				}
			}
			if !s.Flush(5 * time.Second) {
				t.Fatal("Flush after the failure did not return")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.calls != 1 {
				t.Fatalf("the failed sink was written %d times, want once", f.calls)
			}
		})
	}
}

// Writes from many goroutines each arrive whole and once.
func TestWriterKeepsWritesWhole(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	s := New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}))
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				fmt.Fprintf(s, "goroutine %d line %d\n", g, i)
				if i%50 == 0 {
					s.Flush(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if !s.Flush(5 * time.Second) {
		t.Fatal("Flush did not finish")
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if seen[line] || !strings.HasPrefix(line, "goroutine ") {
			t.Fatalf("line %q torn or twice", line)
		}
		seen[line] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d lines arrived, want %d (none dropped: the sink is fast)", len(seen), goroutines*each)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// dropped is the count of lines dropped and not yet noted in the log.
func dropped(s *Writer) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}
