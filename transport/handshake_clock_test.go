package transport

import (
	"testing"
	"time"
)

func TestHandshakeClock(t *testing.T) {
	// bound is a generous upper bound on a clock that should fire.
	const bound = 30 * time.Second
	tests := []struct {
		name          string
		left, askLeft time.Duration
		run           func(c *handshakeClock)
	}{
		// A question never answered (an askpass program that answers
		// slowly, again and again, adds up the same) is cut at the
		// asking bound, not waited for.
		{"asking past its bound", time.Hour, 20 * time.Millisecond, func(c *handshakeClock) { c.ask(true) }},
		{"asking again past its bound", time.Hour, 20 * time.Millisecond, func(c *handshakeClock) {
			c.ask(true)
			c.ask(true)
			c.ask(false)
		}},
		// What is left of the handshake's time runs once answered.
		{"answered, then out of time", 20 * time.Millisecond, time.Hour, func(c *handshakeClock) {
			c.ask(true)
			c.ask(false)
		}},
		{"out of time, not asking", 20 * time.Millisecond, time.Hour, func(c *handshakeClock) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fired := make(chan struct{})
			c := startClockAsking(tt.left, tt.askLeft, func() { close(fired) })
			tt.run(c)
			select {
			case <-fired:
			case <-time.After(bound):
				t.Fatalf("the clock did not fire within %v", bound)
			}
			if !c.expired() || c.stop() {
				t.Error("fired, but the clock does not say so")
			}
		})
	}
}
