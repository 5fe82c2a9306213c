package bench

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// echoServer answers every connection with what it sends, and closes its
// side when the client closes its own.
func echoServer(t *testing.T) string {
	t.Helper()
	return sshtest.Serve(t, "tcp", "127.0.0.1:0", sshtest.Echo)
}

func startProxy(t *testing.T, upstream string, oneWay time.Duration) *DelayProxy {
	t.Helper()
	p, err := StartDelayProxy(upstream, oneWay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// Bytes go through whole and in order both ways, and a half-close reaches
// the other side.
func TestDelayProxyCarries(t *testing.T) {
	p := startProxy(t, echoServer(t), 2*time.Millisecond)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := make([]byte, 12<<20+7) // more than the proxy's queue holds
	rand.Read(want)
	go func() {
		c.Write(want)
		c.(*net.TCPConn).CloseWrite()
	}()
	got := sshtest.Within(t, time.Minute, func() []byte {
		b, err := io.ReadAll(c)
		if err != nil {
			t.Errorf("reading: %v", err)
		}
		return b
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes back, want the %d sent, in order", len(got), len(want))
	}
}

// The delay holds: the first round trip costs the emulated TCP handshake
// and one more round trip, each later one a round trip; the proxy counts
// one flight per round trip.
func TestDelayProxyDelays(t *testing.T) {
	const oneWay = 40 * time.Millisecond
	p := startProxy(t, echoServer(t), oneWay)
	began := time.Now()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 1)
	const trips = 3
	for i := range trips {
		t0 := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		if b[0] != byte(i) {
			t.Fatalf("round trip %d echoed %d", i, b[0])
		}
		took, least := time.Since(t0), 2*oneWay
		if i == 0 {
			took, least = time.Since(began), 4*oneWay
		}
		if took < least {
			t.Fatalf("round trip %d took %s; the proxy must hold it at least %s", i, took, least)
		}
	}
	if got := p.Flights(); got != trips {
		t.Fatalf("Flights() = %d after %d round trips", got, trips)
	}
}

// A server that never reads holds the client back: the proxy does not
// buffer without bound.
func TestDelayProxyBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			<-stop // holds the connection open, reading nothing
		}
	}()
	p := startProxy(t, l.Addr().String(), time.Millisecond)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	chunk := make([]byte, 1<<20)
	written := 0
	for range 512 { // 512 MiB: far more than any bound
		n, err := c.Write(chunk)
		written += n
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v", err)
			}
			break
		}
	}
	// The proxy's queue, its chunk in hand, and the kernel's socket
	// buffers on three sockets, generously.
	const bound = delayQueue*delayChunk + 96<<20
	if written >= bound {
		t.Fatalf("the client wrote %d MiB to a server that reads nothing; want under %d MiB", written>>20, bound>>20)
	}
}

// Closing the proxy ends the connections it carries, and an upstream
// nobody listens on closes the client's connection.
func TestDelayProxyEnds(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		p, err := StartDelayProxy(echoServer(t), time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sshtest.Within(t, 30*time.Second, func() error { return p.Close() })
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
			t.Fatalf("read after Close: %v; want the connection ended", err)
		}
	})
	t.Run("nobody upstream", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		p := startProxy(t, addr, time.Millisecond)
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
			t.Fatalf("read: %v; want the connection ended", err)
		}
	})
}

// Bytes a client sends with no answer between are one flight, unless Mark
// said an exchange begins.
func TestDelayProxyMark(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // answers nothing
		}
	}()
	p, err := StartDelayProxy(l.Addr().String(), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	read := make(chan struct{}, 8)
	p.Log = func(fromClient bool, _ int, _ int64) {
		if fromClient {
			read <- struct{}{}
		}
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() {
		t.Helper()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-read:
		case <-time.After(30 * time.Second):
			t.Fatal("the proxy did not read the byte")
		}
	}
	send()
	send()
	if got := p.Flights(); got != 1 {
		t.Fatalf("Flights() = %d after two sends with no answer, want 1", got)
	}
	p.Mark()
	send()
	if got := p.Flights(); got != 2 {
		t.Fatalf("Flights() = %d after Mark and a send, want 2", got)
	}
}
