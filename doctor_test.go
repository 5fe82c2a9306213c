package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// lateStderr is a remote program that ends without answering, and whose
// stderr line is delivered only once the client has given up on it and
// sends EOF: on a busy machine x/crypto's separate stream buffers may hand
// stderr over that late.
type lateStderr struct {
	late   chan struct{}
	once   sync.Once
	stderr io.Reader
}

func newLateStderr(line string) *lateStderr {
	l := &lateStderr{late: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		<-l.late
		io.WriteString(pw, line)
		pw.Close()
	}()
	l.stderr = pr
	return l
}

func (l *lateStderr) Read([]byte) (int, error)    { return 0, io.EOF }
func (l *lateStderr) Write(p []byte) (int, error) { return len(p), nil }
func (l *lateStderr) CloseWrite() error {
	l.once.Do(func() { close(l.late) })
	return nil
}
func (l *lateStderr) Stderr() io.Reader   { return l.stderr }
func (l *lateStderr) Wait() error         { return nil }
func (l *lateStderr) Signal(string) error { return nil }
func (l *lateStderr) Close() error        { return nil }

// TestDoctorInitializeWaitsForStderr checks that a failed initialize
// reports the stderr line that arrives after the remote's stdout ended.
// Whether the line is late enough to be missed without the wait depends on
// scheduling, so the case runs many times: without the wait about one run
// in fifty misses it, and one in four under the race detector.
func TestDoctorInitializeWaitsForStderr(t *testing.T) {
	for i := range 50 {
		var out bytes.Buffer
		d := &doctor{out: &out}
		d.initialize(context.Background(), &sshcfg.Target{HostName: "127.0.0.1"}, newLateStderr("not an MCP server\n"))
		if !d.failed {
			t.Fatalf("run %d: initialize passed against a remote that never answered:\n%s", i, out.String())
		}
		if !strings.Contains(out.String(), "\n    remote stderr: not an MCP server\n") {
			t.Fatalf("run %d: the report lacks the remote's stderr line:\n%s", i, out.String())
		}
	}
}
