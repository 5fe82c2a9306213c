//go:build linux

package mux_test

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// leakSessions is how many sessions of each ending TestServerNoLeak runs:
// enough that a goroutine or a descriptor kept per session stands out
// from the runtime's own.
const leakSessions = 8

// TestServerNoLeak: sessions that end every way (the program exits, the
// program exits with its input still open, the client goes away mid-
// session) leave no goroutine and no descriptor behind in the master.
func TestServerNoLeak(t *testing.T) {
	m := startOurMaster(t)
	session := func(how string) {
		t.Helper()
		c := dial(t, m.path)
		defer c.Close()
		p := newStdio(t)
		// The test's own ends, closed now rather than at its end, so
		// that the count is the master's.
		defer func() {
			for _, f := range []*os.File{p.in, p.out, p.err} {
				f.Close()
			}
		}()
		req := mux.SessionRequest{Command: map[string]string{"exits": "echo hi", "exits, input open": "exit 3", "abandoned": "cat"}[how]}
		s, err := c.NewSession(timeout(t, hangBound), req, p.farIn, p.farOut, p.farErr)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		p.closeFar()
		switch how {
		case "exits":
			if r := collect(t, s, p, strings.NewReader("ignored")); r.err != nil || string(r.stdout) != "hi\n" {
				t.Fatalf("echo hi: %q, %v", r.stdout, r.err)
			}
		case "exits, input open":
			r := sshtest.Within(t, hangBound, func() result {
				var r result
				r.status, r.err = s.Wait()
				return r
			})
			if r.status != 3 || r.err != nil {
				t.Fatalf("exit 3 with its input open: %d, %v", r.status, r.err)
			}
		case "abandoned":
			p.in.Write([]byte("x\n"))
			p.out.Read(make([]byte, 2)) // the session is up and copying
			s.Close()
		}
	}
	ways := []string{"exits", "exits, input open", "abandoned"}
	for _, how := range ways {
		session(how) // warm up: the pools and timers the runtime keeps
	}
	// What the warm-up's sessions have not yet let go of only makes the
	// bound looser, by a few against a leak's one per session.
	settled := func(goroutines, fds int) bool {
		deadline := time.Now().Add(hangBound)
		for time.Now().Before(deadline) {
			if runtime.NumGoroutine() <= goroutines && openFDs(t) <= fds {
				return true
			}
			time.Sleep(10 * time.Millisecond) // polling a bound, not synchronizing
		}
		return false
	}
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	for range leakSessions {
		for _, how := range ways {
			session(how)
		}
	}
	// A little slack for the runtime and the x/crypto client's own.
	if !settled(g0+5, f0+3) {
		buf := make([]byte, 1<<20)
		t.Errorf("after %d sessions: %d goroutines (%d before), %d descriptors (%d before)\n%s",
			leakSessions*len(ways), runtime.NumGoroutine(), g0, openFDs(t), f0, buf[:runtime.Stack(buf, true)])
	}
}

// openFDs is how many descriptors this process has open.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
