package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// A network that silently stops delivering is noticed within
// ServerAliveInterval × ServerAliveCountMax, and the session's reads fail
// with the reason; an idle but healthy one is kept.
func TestKeepaliveNoticesBlackHole(t *testing.T) {
	l := newLab(t)
	d := l.dialer(t, "target-wire", "ServerAliveCountMax=3")
	// The configuration holds whole seconds; the test needs a faster beat.
	d.Target.ServerAliveInterval = 200 * time.Millisecond
	limit := 3 * d.Target.ServerAliveInterval

	r, ended := startCat(t, d)

	// Idle for three times the limit: answered keepalives keep it up.
	select {
	case err := <-ended:
		t.Fatalf("an idle, healthy connection ended: %v", err)
	case <-time.After(3 * limit):
	}

	l.wire.BlackHole()
	start := time.Now()
	var err error
	select {
	case err = <-ended:
	case <-time.After(limit + 10*time.Second):
		t.Fatal("the black hole went unnoticed")
	}
	took := time.Since(start)
	var ke *KeepaliveError
	if !errors.As(err, &ke) {
		t.Fatalf("read ended with %v, want a KeepaliveError", err)
	}
	// The margin is for a loaded machine: the time the process is held
	// up past its timer is not counted as the server's silence, so it
	// adds to the wait.
	if margin := 5 * time.Second; took > limit+margin {
		t.Errorf("noticed after %s, want within %s + %s", took, limit, margin)
	}
	t.Logf("noticed after %s: %v", took.Round(time.Millisecond), err)
	if err := r.Wait(); !errors.Is(err, ErrNoExitStatus) || !errors.As(err, &ke) {
		t.Errorf("Wait = %v, want no exit status because of the keepalive", err)
	}
	if !strings.Contains(l.log.String(), "level=ERROR msg=\"target-wire (") {
		t.Errorf("the failure was not logged as an error:\n%s", l.log)
	}
}

// The keeper declares the peer dead after exactly the silence limit, even
// when a request never comes back, and not while bytes keep arriving.
func TestKeeper(t *testing.T) {
	cases := []struct {
		name     string
		traffic  bool // bytes keep arriving though requests go unanswered
		wantDead bool
	}{
		{"silent peer", false, true},
		{"busy peer", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			// Bytes that keep arriving make the last read always now,
			// however the test itself is scheduled.
			lastRead := func() time.Time {
				if c.traffic {
					return time.Now()
				}
				return start
			}
			stuck := make(chan struct{})
			defer close(stuck)
			dead := make(chan time.Duration, 1)
			k := &keeper{
				conn:     stuckConn(stuck),
				lastRead: lastRead,
				interval: 50 * time.Millisecond,
				count:    3,
				dead:     func(s time.Duration) { dead <- s },
				log:      slog.New(slog.DiscardHandler),
			}
			closed := make(chan struct{})
			defer close(closed)
			go k.run(closed)
			// A busy peer is watched for a second, twenty intervals; a
			// silent one is waited for as long as a loaded machine
			// may take.
			wait := time.Second
			if c.wantDead {
				wait = testBound
			}
			select {
			case s := <-dead:
				if !c.wantDead {
					t.Fatalf("declared dead after %s of silence while bytes arrived", s)
				}
				if s < 150*time.Millisecond || time.Since(start) < 150*time.Millisecond {
					t.Fatalf("declared dead after %s of silence, before interval × count", s)
				}
			case <-time.After(wait):
				if c.wantDead {
					t.Fatal("a silent peer was not declared dead")
				}
			}
		})
	}
}

// A stall of the process (its timer fires long after it was due) is not
// the server's silence: a server whose answer waited in the socket
// meanwhile is kept, and one that then stays silent is declared dead
// after the limit counted from the end of the stall.
func TestKeeperStall(t *testing.T) {
	const stall = time.Hour // what the clock jumps while nothing runs
	for _, answers := range []bool{true, false} {
		t.Run(fmt.Sprintf("answers %v", answers), func(t *testing.T) {
			t.Parallel()
			clock := &jumpClock{}
			var mu sync.Mutex
			last := clock.now()
			lastRead := func() time.Time { mu.Lock(); defer mu.Unlock(); return last }
			stuck := make(chan struct{})
			defer close(stuck)
			asked := make(chan struct{}, 1)
			dead := make(chan time.Duration, 1)
			k := &keeper{
				conn: answerConn(func() {
					if answers {
						mu.Lock()
						last = clock.now()
						mu.Unlock()
					}
					select {
					case asked <- struct{}{}:
					default:
					}
					if !answers {
						<-stuck
					}
				}),
				lastRead: lastRead,
				interval: 50 * time.Millisecond,
				count:    3,
				dead:     func(s time.Duration) { dead <- s },
				log:      slog.New(slog.DiscardHandler),
				now:      clock.now,
			}
			closed := make(chan struct{})
			defer close(closed)
			go k.run(closed)
			// The stall, once the keeper runs and has asked: the last
			// read is an hour old when it next looks.
			select {
			case <-asked:
			case <-time.After(testBound):
				t.Fatal("the keeper sent no keepalive")
			}
			clock.jump(stall)
			wait := time.Second // twenty intervals of a peer that answers
			if !answers {
				wait = testBound
			}
			select {
			case s := <-dead:
				if answers {
					t.Fatalf("declared dead after %s of silence, the stall counted as the server's", s)
				}
				if s < 150*time.Millisecond || s >= stall {
					t.Fatalf("declared dead after %s of silence, want interval × count counted after the stall", s)
				}
			case <-time.After(wait):
				if !answers {
					t.Fatal("a peer silent after the stall was not declared dead")
				}
			}
		})
	}
}

// jumpClock is the time, jumped ahead as a stalled process sees it.
type jumpClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *jumpClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *jumpClock) jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// answerConn answers each keepalive request once f returns.
type answerConn func()

func (f answerConn) SendRequest(string, bool, []byte) (bool, []byte, error) {
	f()
	return true, nil, nil
}

type stuckConn chan struct{}

func (s stuckConn) SendRequest(string, bool, []byte) (bool, []byte, error) {
	<-s
	return false, nil, errors.New("closed")
}

func TestKeepaliveParams(t *testing.T) {
	cases := []struct {
		opts     []string
		interval time.Duration
		count    int
	}{
		{nil, DefaultKeepalive, 3},
		{[]string{"ServerAliveInterval=0"}, 0, 3},
		{[]string{"ServerAliveInterval=60", "ServerAliveCountMax=5"}, time.Minute, 5},
		{[]string{"BatchMode=yes"}, DefaultKeepalive, 3}, // ssh's 300 s is too slow
		{[]string{"ServerAliveInterval=5", "ServerAliveCountMax=0"}, 5 * time.Second, 1},
	}
	for _, c := range cases {
		tg, err := sshcfg.Resolve("host", sshcfg.Options{ConfigFile: "none", Options: c.opts, Home: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		interval, count := keepaliveParams(hop{t: tg})
		if interval != c.interval || (interval > 0 && count != c.count) {
			t.Errorf("%v: interval %s × %d, want %s × %d", c.opts, interval, count, c.interval, c.count)
		}
	}
}
