package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// fastStop is a calm schedule short enough for tests.
var fastStop = schedule{exit: 20 * time.Millisecond, term: 20 * time.Millisecond, kill: 20 * time.Millisecond}

// After the host closed stdin, a program that does not exit is signalled
// TERM, then KILL, and its session closed; each step only when the one
// before did not end it, and never a signal the server refused.
func TestStopRemoteSequence(t *testing.T) {
	tests := []struct {
		name   string
		endsOn string // what ends the program; "" for nothing
		refuse bool
		calls  []string
		code   int
		log    string
	}{
		{"exits at EOF", "EOF", false, []string{"eof", "close"}, 0, ""},
		{"exits at TERM", "TERM", false, []string{"eof", "signal TERM", "close"}, 128 + 15, "asking the server to stop it"},
		{"exits only at KILL", "KILL", false, []string{"eof", "signal TERM", "signal KILL", "close"}, 128 + 9, "asking the server to kill it"},
		{"server refuses signals", "", true, []string{"eof", "signal TERM", "close"}, ExitStatus, "may keep running"},
		{"survives KILL", "", false, []string{"eof", "signal TERM", "signal KILL", "close"}, ExitStatus, "did not end after KILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemRemote(&memRemote{endsOn: map[string]bool{tt.endsOn: true}, refuse: tt.refuse, serve: true})
			var log sshtest.Buffer
			b := &Bridge{Name: "box", Logger: newTestLogger(&log), schedules: schedules{calm: fastStop},
				Connect: func(context.Context) (transport.Remote, error) { return f, nil }}
			h := startBridge(t, b)
			h.send(`{"jsonrpc":"2.0","id":1,"method":"echo"}`)
			if r := h.recv(); r["id"] != 1.0 {
				t.Fatalf("echo = %v", r)
			}
			h.in.Close()
			if res := h.wait(); res.code != tt.code {
				t.Fatalf("Run = %d, %v; want %d", res.code, res.err, tt.code)
			}
			if got := f.recorded(); !slices.Equal(got, tt.calls) {
				t.Fatalf("the bridge did %q; want %q", got, tt.calls)
			}
			if !strings.Contains(log.String(), tt.log) {
				t.Fatalf("the log lacks %q:\n%s", tt.log, log.String())
			}
		})
	}
}

// A signal (ctx ending) answers every request in flight and ends the
// session on the hurried schedule, whatever the bridge was doing: the
// calm one here would take an hour.
func TestStopRemoteHurried(t *testing.T) {
	calm := schedule{exit: time.Hour, term: time.Hour, kill: time.Hour}
	tests := []struct {
		name string
		deaf bool
		// before is what the host does before the signal; it returns
		// the ids that must be answered with an error.
		before func(h *host, f *memRemote) []float64
	}{
		{"requests in flight", false, func(h *host, f *memRemote) []float64 {
			h.send(`{"jsonrpc":"2.0","id":1,"method":"hang"}`)
			h.send(`{"jsonrpc":"2.0","id":2,"method":"hang"}`)
			h.send(`{"jsonrpc":"2.0","id":3,"method":"echo"}`)
			if r := h.recv(); r["id"] != 3.0 {
				h.t.Fatalf("echo = %v", r)
			}
			return []float64{1, 2}
		}},
		{"stdin closed, waiting for the exit", false, func(h *host, f *memRemote) []float64 {
			h.send(`{"jsonrpc":"2.0","id":1,"method":"hang"}`)
			h.in.Close()
			f.awaitCall(h.t, "eof")
			return []float64{1}
		}},
		{"write blocked: the remote does not read", true, func(h *host, f *memRemote) []float64 {
			// The write blocks with the bridge's: not h.send, which
			// may fail the test from this goroutine.
			go io.WriteString(h.in, fmt.Sprintf(`{"jsonrpc":"2.0","id":9,"method":"digest","params":{"text":%q}}`+"\n", strings.Repeat("x", 1<<20)))
			select {
			case <-f.writing:
			case <-time.After(bound):
				h.t.Fatal("the bridge wrote nothing to the remote")
			}
			return []float64{9}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemRemote(&memRemote{endsOn: map[string]bool{"KILL": true}, serve: !tt.deaf})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := &Bridge{Name: "box", ExitWait: time.Hour, schedules: schedules{calm: calm},
				Connect: func(context.Context) (transport.Remote, error) { return f, nil }}
			h := startBridgeCtx(t, ctx, b)
			ids := tt.before(h, f)
			cancel()
			for range ids {
				r := h.recv()
				e, _ := r["error"].(map[string]any)
				if e == nil || e["code"] != float64(CodeConnectionLost) || !slices.Contains(ids, r["id"].(float64)) {
					t.Fatalf("answer = %v; want error %d for one of %v", r, CodeConnectionLost, ids)
				}
			}
			if res := h.wait(); res.code != 128+9 {
				t.Fatalf("Run = %d, %v; want the remote's 137", res.code, res.err)
			}
			got := f.recorded()
			if !slices.Contains(got, "signal TERM") || !slices.Contains(got, "signal KILL") || got[len(got)-1] != "close" {
				t.Fatalf("the bridge did %q; want TERM, KILL and close last", got)
			}
		})
	}
}

// OpenSSH refuses to signal a program that has just ended, and reports the
// exit right behind the refusal: the program's own status is how the
// session ended, not a refusal that says it may keep running. The TERM
// here ends it; the KILL after it is refused; on either schedule.
func TestStopRemoteRefusedAfterExit(t *testing.T) {
	short := schedule{exit: 20 * time.Millisecond, term: 20 * time.Millisecond, kill: time.Minute}
	long := schedule{exit: time.Hour, term: time.Hour, kill: time.Hour}
	tests := []struct {
		name      string
		schedules schedules
		hurried   bool
	}{
		{"calm", schedules{calm: short, hurried: short}, false},
		{"hurried", schedules{calm: long, hurried: short}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMemRemote(&memRemote{endsLate: true})
			var log sshtest.Buffer
			st := stopper{schedules: tt.schedules, log: newTestLogger(&log), name: "box"}
			hurry := make(chan struct{})
			if tt.hurried {
				close(hurry)
			}
			err := sshtest.Within(t, bound, func() error { return st.stop(f, hurry) })
			var ee *transport.ExitError
			if !errors.As(err, &ee) || ee.Status != 128+15 {
				t.Fatalf("stop = %v; want the program's exit by TERM\n%s", err, log.String())
			}
			if got, want := f.recorded(), []string{"signal TERM", "signal KILL"}; !slices.Equal(got, want) {
				t.Fatalf("the bridge did %q; want %q", got, want)
			}
			if strings.Contains(log.String(), "may keep running") {
				t.Fatalf("the log says a program that ended may keep running:\n%s", log.String())
			}
		})
	}
}
