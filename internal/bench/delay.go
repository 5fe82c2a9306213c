package bench

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// delayChunk is the most a proxy reads from one side at a time: an SSH
// packet's usual size, so that a packet is rarely split across two
// deliveries.
const delayChunk = 32 << 10

// delayQueue is how many chunks a proxy holds per direction while they wait
// out the delay: 256 × 32 KiB = 8 MiB, more than a 50 ms link carries at
// 100 MiB/s, so the delay does not throttle what the benchmark sends
// (a session's SSH window is 2 MiB), and a side that sends faster than the
// other reads is held back rather than buffered without bound.
const delayQueue = 256

// DelayProxy is a TCP proxy on 127.0.0.1 in front of an upstream address
// that holds every byte for OneWay in each direction, in order, as a link
// with a round-trip time of 2 × OneWay would. A user-space proxy cannot
// delay TCP's own handshake (the kernel completes it before accept), so it
// emulates it: it dials upstream one OneWay after accepting, as the SYN
// would arrive, and holds the client's first bytes until a round trip after
// the accept, when the client's connect would have returned.
type DelayProxy struct {
	// Addr is the proxy's listening address (127.0.0.1:port).
	Addr   string
	OneWay time.Duration

	// Log, when set before the first connection, is told of every chunk
	// as it arrives at the proxy: for finding where a client waits.
	Log func(fromClient bool, n int, flight int64)

	upstream string
	l        net.Listener
	flights  atomic.Int64
	epoch    atomic.Int64 // moved on by Mark
	accepted atomic.Int64
	wg       sync.WaitGroup

	done chan struct{} // closed by Close

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartDelayProxy listens on 127.0.0.1 and forwards every connection to
// upstream with the delay.
func StartDelayProxy(upstream string, oneWay time.Duration) (*DelayProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &DelayProxy{Addr: l.Addr().String(), OneWay: oneWay, upstream: upstream, l: l, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Flights is how many bursts the clients have sent so far: the first
// bytes of a connection, then each time a client sends after the server's
// bytes reached it. On a protocol that waits for every answer it is the
// number of round trips the clients spent.
func (p *DelayProxy) Flights() int64 { return p.flights.Load() }

// Mark makes the next bytes each client sends a flight of their own: what
// a connection carries after it starts a new exchange, even when the
// client spoke last (a master's connection between two sessions).
func (p *DelayProxy) Mark() { p.epoch.Add(1) }

// Accepted is how many connections the proxy has accepted.
func (p *DelayProxy) Accepted() int64 { return p.accepted.Load() }

// Close stops accepting, ends every connection and waits for its
// goroutines.
func (p *DelayProxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track records c to be closed by Close; false when the proxy is closed.
func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c, time.Now())
	}
}

// serve carries one connection: the client c, accepted at accepted.
func (p *DelayProxy) serve(c net.Conn, accepted time.Time) {
	defer p.wg.Done()
	defer p.untrack(c)
	// The SYN reaches the server one way after the client sent it.
	if !p.wait(accepted.Add(p.OneWay)) {
		return
	}
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(u) {
		return
	}
	defer p.untrack(u)
	var spoke atomic.Bool // the server's bytes reached the client since it last sent
	spoke.Store(true)     // so that the client's first bytes count as a flight
	connected := accepted.Add(2 * p.OneWay)
	seen := p.epoch.Load() // the epoch of the client's last flight; its reader's alone
	var done sync.WaitGroup
	done.Add(2)
	go func() {
		defer done.Done()
		p.pipe(u, c, connected, func(n int) {
			if e := p.epoch.Load(); spoke.Swap(false) || e != seen {
				seen = e
				p.flights.Add(1)
			}
			if p.Log != nil {
				p.Log(true, n, p.flights.Load())
			}
		}, nil)
	}()
	go func() {
		defer done.Done()
		p.pipe(c, u, time.Time{}, func(n int) {
			if p.Log != nil {
				p.Log(false, n, p.flights.Load())
			}
		}, func() { spoke.Store(true) })
	}()
	done.Wait()
}

// wait returns at t, or false early when the proxy closes.
func (p *DelayProxy) wait(t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-p.done:
		return false
	}
}

type delayed struct {
	b  []byte
	at time.Time // when it is to be written
}

// pipe copies src to dst, each chunk written OneWay after it was read (and
// no sooner than notBefore + OneWay). read is called as each chunk arrives,
// wrote as each is about to be written. When src ends, dst's write side is closed
// once everything read is written; when either fails, both close.
func (p *DelayProxy) pipe(dst, src net.Conn, notBefore time.Time, read func(n int), wrote func()) {
	q := make(chan delayed, delayQueue)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, delayChunk)
			n, err := src.Read(buf)
			if n > 0 {
				if read != nil {
					read(n)
				}
				at := time.Now()
				if at.Before(notBefore) {
					at = notBefore
				}
				q <- delayed{b: buf[:n], at: at.Add(p.OneWay)}
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	<-timer.C
	for d := range q {
		if wait := time.Until(d.at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.done:
				src.Close()
				dst.Close()
				for range q { // let the reader end
				}
				return
			}
		}
		// Before the write: the peer may answer before Write returns.
		if wrote != nil {
			wrote()
		}
		if _, err := dst.Write(d.b); err != nil {
			src.Close()
			dst.Close()
			for range q { // let the reader end
			}
			return
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}
