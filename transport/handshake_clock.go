package transport

import (
	"sync"
	"time"
)

// maxAsking bounds the time a handshake's clock stands still, all the
// questions of one handshake together: a person types a password and an
// OTP in minutes, while an askpass program that answers slowly but in time,
// over and over, or a server that keeps asking, would otherwise hold the
// connect (and the MCP host waiting on it) for hours.
const maxAsking = 10 * time.Minute

// handshakeClock is what is left of a hop's connect timeout for its SSH
// handshake. It stands still while a person is asked for a password or a
// keyboard-interactive answer, up to maxAsking in all: ssh's
// ConnectTimeout does not cover its prompts either, and an OTP takes
// longer to type than a handshake takes.
type handshakeClock struct {
	mu      sync.Mutex
	timer   *time.Timer
	left    time.Duration // of the handshake's time
	askLeft time.Duration // of the time asking may take
	since   time.Time     // when the running one of the two last started
	asking  int
	fired   bool
	done    bool
}

// startClock runs expire once left has passed outside of asking, or
// maxAsking inside it.
func startClock(left time.Duration, expire func()) *handshakeClock {
	return startClockAsking(left, maxAsking, expire)
}

func startClockAsking(left, askLeft time.Duration, expire func()) *handshakeClock {
	c := &handshakeClock{left: left, askLeft: askLeft, since: time.Now()}
	c.timer = time.AfterFunc(left, func() {
		c.mu.Lock()
		due := c.left
		if c.asking > 0 {
			due = c.askLeft
		}
		// A timer stopped too late to stop this call has been set
		// again: only a call when the running time is up counts.
		if c.done || c.fired || time.Since(c.since) < due {
			c.mu.Unlock()
			return
		}
		c.fired = true
		c.mu.Unlock()
		expire()
	})
	return c
}

// ask stops the clock while a person is asked (asking true), running the
// asking time instead, and starts it again afterwards (false).
func (c *handshakeClock) ask(asking bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.fired {
		return
	}
	if asking {
		if c.asking == 0 {
			c.timer.Stop()
			c.left -= time.Since(c.since)
			c.since = time.Now()
			c.timer.Reset(max(c.askLeft, 0))
		}
		c.asking++
		return
	}
	if c.asking--; c.asking == 0 {
		c.timer.Stop()
		c.askLeft -= time.Since(c.since)
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
