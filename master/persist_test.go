package master

import (
	"testing"
	"time"
)

// expiredWithin reports whether c expires within d.
func expiredWithin(c *idleClock, d time.Duration) bool {
	select {
	case <-c.expired:
		return true
	case <-time.After(d):
		return false
	}
}

// hang is a bound on a wait that must end; a loaded machine is far
// faster than this.
const hang = 20 * time.Second

func TestIdleClock(t *testing.T) {
	t.Run("ends after the last session and its time", func(t *testing.T) {
		c := newIdleClock(Persist{Idle: 10 * time.Millisecond})
		defer c.stop()
		c.sessions(1)
		c.sessions(0)
		if !expiredWithin(c, hang) {
			t.Fatal("the clock did not run out after the last session ended")
		}
	})
	t.Run("a live session holds it", func(t *testing.T) {
		c := newIdleClock(Persist{Idle: time.Millisecond})
		defer c.stop()
		c.sessions(1)
		c.sessions(2)
		c.sessions(1)
		if expiredWithin(c, 100*time.Millisecond) {
			t.Fatal("the clock ran out with a session open")
		}
	})
	t.Run("a new session restarts it", func(t *testing.T) {
		c := newIdleClock(Persist{Idle: 50 * time.Millisecond})
		defer c.stop()
		for range 20 {
			c.sessions(1)
			c.sessions(0)
		}
		c.sessions(1)
		if expiredWithin(c, 200*time.Millisecond) {
			t.Fatal("an old timer ran out although a session is open")
		}
	})
	t.Run("forever never ends", func(t *testing.T) {
		c := newIdleClock(Persist{Forever: true})
		defer c.stop()
		c.sessions(1)
		c.sessions(0)
		if expiredWithin(c, 100*time.Millisecond) {
			t.Fatal("ControlPersist yes ran out")
		}
	})
	t.Run("waits for the first session", func(t *testing.T) {
		c := newIdleClock(Persist{}) // ControlPersist no
		defer c.stop()
		if expiredWithin(c, 100*time.Millisecond) {
			t.Fatalf("the clock ran out before the first session had %s to come", firstSessionWait)
		}
		c.sessions(1)
		c.sessions(0)
		if !expiredWithin(c, hang) {
			t.Fatal("ControlPersist no did not end with the last session")
		}
	})
}

func TestPersistString(t *testing.T) {
	for _, c := range []struct {
		p    Persist
		want string
	}{
		{Persist{}, "no"},
		{Persist{Forever: true}, "yes"},
		{Persist{Idle: 10 * time.Minute}, "10m0s"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
}
