package sshtest

import (
	"net"
	"sync"
	"testing"
)

// Relay is a TCP relay on 127.0.0.1 in front of a target address, for tests
// of what a network can do to a live connection: drop it (Cut) or stop
// delivering bytes while keeping the sockets open (BlackHole), as a NAT
// table that forgot the flow or a firewall that drops silently would.
type Relay struct {
	// Addr is the relay's listening address (127.0.0.1:port).
	Addr string

	target string
	l      net.Listener

	mu       sync.Mutex
	gate     chan struct{} // closed while bytes flow
	conns    map[*relayPair]bool
	accepted int
}

type relayPair struct {
	a    net.Conn
	once sync.Once
	done chan struct{}

	mu sync.Mutex
	b  net.Conn // the target side, once dialed
}

func (p *relayPair) close() {
	p.once.Do(func() {
		close(p.done)
		p.a.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.b != nil {
			p.b.Close()
		}
	})
}

// setTarget records the target side; false when the pair was closed first.
func (p *relayPair) setTarget(b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		b.Close()
		return false
	default:
		p.b = b
		return true
	}
}

// StartRelay starts a relay that forwards every connection it accepts to
// target; it stops, with every connection it holds, when the test ends.
func StartRelay(t testing.TB, target string) *Relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{
		Addr:   l.Addr().String(),
		target: target,
		l:      l,
		gate:   make(chan struct{}),
		conns:  make(map[*relayPair]bool),
	}
	close(r.gate)
	go r.accept()
	t.Cleanup(func() {
		l.Close()
		r.Cut()
	})
	return r
}

func (r *Relay) accept() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		p := &relayPair{a: c, done: make(chan struct{})}
		r.mu.Lock()
		r.conns[p] = true
		r.accepted++
		r.mu.Unlock()
		go r.serve(p)
	}
}

func (r *Relay) serve(p *relayPair) {
	defer func() {
		p.close()
		r.mu.Lock()
		delete(r.conns, p)
		r.mu.Unlock()
	}()
	// While black-holed, even the connection to the target waits: the
	// client sees a connect that succeeds and then nothing at all.
	if !r.wait(p) {
		return
	}
	b, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	if !p.setTarget(b) {
		return
	}
	go r.pump(p, b, p.a)
	r.pump(p, p.a, b)
	<-p.done
}

// pump copies src to dst; a chunk read while black-holed is held, not
// dropped, so a restored connection carries an intact stream.
func (r *Relay) pump(p *relayPair, dst, src net.Conn) {
	defer p.close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !r.wait(p) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wait blocks until bytes may flow; false when the connection was cut.
func (r *Relay) wait(p *relayPair) bool {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-p.done:
		return false
	}
}

// Cut closes every connection the relay holds, at both ends. New
// connections are accepted and forwarded as before.
func (r *Relay) Cut() {
	r.mu.Lock()
	pairs := make([]*relayPair, 0, len(r.conns))
	for p := range r.conns {
		pairs = append(pairs, p)
	}
	r.mu.Unlock()
	for _, p := range pairs {
		p.close()
	}
}

// BlackHole stops all forwarding, on live connections and new ones alike,
// while keeping every socket open: peers see silence, not a reset.
func (r *Relay) BlackHole() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
		r.gate = make(chan struct{})
	default:
	}
}

// Restore resumes forwarding after BlackHole; bytes held meanwhile are
// delivered in order.
func (r *Relay) Restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
	default:
		close(r.gate)
	}
}

// Accepted is how many connections the relay has accepted so far, so that
// a test can tell that a client reconnected.
func (r *Relay) Accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}
