package master

import (
	"sync"
	"time"
)

// firstSessionWait is how long a new master waits for its first session
// even when ControlPersist would have it end sooner (ControlPersist no, or
// a short time): the m2m-ssh that started it connects as soon as it reads
// the readiness message, but on a loaded machine that takes a while.
const firstSessionWait = 30 * time.Second

// Persist is ControlPersist as the master keeps it: how long it stays
// with no session open.
type Persist struct {
	// Forever is ControlPersist yes: until ssh -O exit or the
	// connection dies.
	Forever bool
	// Idle is the time to stay after the last session ends; zero is
	// ControlPersist no: end with it.
	Idle time.Duration
}

func (p Persist) String() string {
	switch {
	case p.Forever:
		return "yes"
	case p.Idle == 0:
		return "no"
	}
	return p.Idle.String()
}

// idleClock is ControlPersist's clock: it runs while no session is open
// and, when it runs out, closes expired.
type idleClock struct {
	persist Persist
	expired chan struct{}

	mu    sync.Mutex
	timer *time.Timer
	fired bool
}

// newIdleClock starts the clock for a master with no session yet, which
// waits at least firstSessionWait.
func newIdleClock(p Persist) *idleClock {
	c := &idleClock{persist: p, expired: make(chan struct{})}
	c.start(max(p.Idle, firstSessionWait))
	return c
}

// sessions is told the number of live sessions each time it changes.
func (c *idleClock) sessions(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fired {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if n == 0 {
		c.startLocked(c.persist.Idle)
	}
}

func (c *idleClock) start(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked(d)
}

func (c *idleClock) startLocked(d time.Duration) {
	if c.persist.Forever {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		// A session that began after the timer fired but before this
		// ran stopped or replaced it: only the current timer counts.
		if c.timer != t || c.fired {
			return
		}
		c.fired = true
		close(c.expired)
	})
	c.timer = t
}

// stop stops the clock for good.
func (c *idleClock) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fired = true
	if c.timer != nil {
		c.timer.Stop()
	}
}
