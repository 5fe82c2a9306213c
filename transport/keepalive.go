package transport

import (
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultKeepalive is the keepalive interval when the configuration sets
// no ServerAliveInterval. ssh sends none by default; an MCP session idles
// for hours, across NATs and firewalls that drop idle flows silently, so
// m2m-ssh does. ServerAliveInterval 0 turns keepalives off.
const DefaultKeepalive = 15 * time.Second

// keepaliveRequest is the global request OpenSSH's client sends; servers
// answer it, if only with a failure, which proves them alive as well.
const keepaliveRequest = "keepalive@openssh.com"

// keepalive watches client for as long as it lives: every interval it
// sends a keepalive request unless one is still unanswered, and when
// nothing at all has arrived for interval × ServerAliveCountMax it
// declares the server dead, logs why and closes client, so that reads on
// its channels fail at once rather than after the kernel's TCP timeout.
func (d *Dialer) keepalive(client *ssh.Client, conn *watchedConn, h hop, life *lifeline) {
	interval, count := keepaliveParams(h)
	if interval <= 0 {
		return
	}
	k := &keeper{
		conn:     client,
		lastRead: conn.lastRead,
		interval: interval,
		count:    count,
		log:      d.logger().With("target", h.t.Alias),
		dead: func(silent time.Duration) {
			err := &KeepaliveError{Alias: h.t.Alias, Addr: h.t.Addr(), JumpFor: h.jumpFor, Silent: silent, Interval: interval, Count: count}
			life.lose(err)
			d.logger().Error(err.Error(), "hint", err.Hint())
			client.Close()
		},
	}
	closed := make(chan struct{})
	go func() {
		client.Wait()
		close(closed)
	}()
	go k.run(closed)
}

// keepaliveParams reads ServerAliveInterval and ServerAliveCountMax, with
// DefaultKeepalive when the interval was not set explicitly (ssh's own
// BatchMode default, 300 s, is too slow for a bridge to notice a loss).
func keepaliveParams(h hop) (time.Duration, int) {
	interval := h.t.ServerAliveInterval
	if !h.t.Set("ServerAliveInterval") && (interval <= 0 || interval > DefaultKeepalive) {
		interval = DefaultKeepalive
	}
	return interval, max(h.t.ServerAliveCountMax, 1)
}

// keeper is the keepalive loop, apart from the SSH client for tests.
type keeper struct {
	conn interface {
		SendRequest(string, bool, []byte) (bool, []byte, error)
	}
	lastRead func() time.Time
	interval time.Duration
	count    int
	dead     func(silent time.Duration)
	log      *slog.Logger
	now      func() time.Time // nil for time.Now; a test makes it jump
}

// run is the loop. The silence it judges is the time it was awake to see
// it: when it wakes after its timer was due, the process was not running (a loaded
// machine, a stopped or paused process), and neither was the reader that
// would have seen the server's answer, which may be waiting in the
// socket. That time is not counted, as ssh, which counts unanswered
// keepalives one per interval, does not count it either.
func (k *keeper) run(closed <-chan struct{}) {
	now := k.now
	if now == nil {
		now = time.Now
	}
	limit := k.interval * time.Duration(k.count)
	due := now().Add(k.interval)
	timer := time.NewTimer(k.interval)
	defer timer.Stop()
	// answered delivers each request's outcome. At most one is out at a
	// time: x/crypto sends global requests one after another anyway.
	answered := make(chan error, 1)
	outstanding := false
	// unseen is how much of the time since the last read, since, the
	// loop was held up past its timer.
	var since time.Time
	var unseen time.Duration
	for {
		select {
		case <-closed:
			return
		case err := <-answered:
			outstanding = false
			if err != nil {
				return // the connection is gone
			}
		case <-timer.C:
		}
		t := now()
		last := k.lastRead()
		if !last.Equal(since) {
			since, unseen = last, 0
		}
		// Past due, whatever woke it: an answer can come in after a
		// stall before the timer's tick is taken.
		if late := t.Sub(due); late > 0 {
			unseen += late
		}
		silent := t.Sub(last) - unseen
		if silent >= limit {
			k.dead(silent.Round(time.Millisecond))
			return
		}
		// Like ssh, ask only when the server has been quiet for an
		// interval; then wait for an answer, or anything else from it,
		// until the silence reaches the limit.
		wait := limit - silent
		switch {
		case silent < k.interval:
			wait = k.interval - silent
		case outstanding:
			k.log.Debug("keepalive unanswered", "silent", silent.Round(time.Millisecond))
		default:
			outstanding = true
			go func() {
				_, _, err := k.conn.SendRequest(keepaliveRequest, true, nil)
				answered <- err
			}()
		}
		wait = max(wait, time.Millisecond)
		due = t.Add(wait)
		timer.Reset(wait)
	}
}

// KeepaliveError is a server declared dead: nothing arrived from it, not
// even an answer to a keepalive request, for ServerAliveInterval ×
// ServerAliveCountMax.
type KeepaliveError struct {
	Alias    string
	Addr     string
	JumpFor  string // set when Alias is a jump host
	Silent   time.Duration
	Interval time.Duration
	Count    int
}

func (e *KeepaliveError) Error() string {
	who := e.Alias
	if e.JumpFor != "" {
		who = "jump host " + e.Alias + " (for " + e.JumpFor + ")"
	}
	return fmt.Sprintf("%s (%s) did not answer for %s (ServerAliveInterval %s × ServerAliveCountMax %d); the connection is dead",
		who, e.Addr, e.Silent, e.Interval, e.Count)
}

func (e *KeepaliveError) Timeout() bool { return true }

func (e *KeepaliveError) Hint() string {
	return "the network path dropped the connection (sleep, Wi-Fi change, NAT or firewall timeout); raise ServerAliveInterval or ServerAliveCountMax if the path is just slow"
}
