package transport

import (
	"sync"
	"time"
)

// handshakeClock is what is left of a hop's connect timeout for its SSH
// handshake. It stands still while a person is asked for a password or a
// keyboard-interactive answer, which the askpass program bounds: ssh's
// ConnectTimeout does not cover its prompts either, and an OTP takes
// longer to type than a handshake takes.
type handshakeClock struct {
	mu     sync.Mutex
	timer  *time.Timer
	left   time.Duration
	since  time.Time
	asking int
	fired  bool
	done   bool
}

// startClock runs expire once left has passed outside of asking.
func startClock(left time.Duration, expire func()) *handshakeClock {
	c := &handshakeClock{left: left, since: time.Now()}
	c.timer = time.AfterFunc(left, func() {
		c.mu.Lock()
		if c.done || c.asking > 0 {
			c.mu.Unlock()
			return
		}
		c.fired = true
		c.mu.Unlock()
		expire()
	})
	return c
}

// ask stops the clock while a person is asked (asking true) and starts it
// again afterwards (false).
func (c *handshakeClock) ask(asking bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.fired {
		return
	}
	if asking {
		if c.asking == 0 {
			if c.timer.Stop() {
				c.left -= time.Since(c.since)
			} else {
				c.left = 0 // it was due: it fires when asking ends
			}
		}
		c.asking++
		return
	}
	if c.asking--; c.asking == 0 {
		c.since = time.Now()
		c.timer.Reset(max(c.left, 0))
	}
}

// stop ends the clock and reports whether it had not fired.
func (c *handshakeClock) stop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	c.timer.Stop()
	return !c.fired
}

// expired reports whether the handshake ran out of time.
func (c *handshakeClock) expired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}
