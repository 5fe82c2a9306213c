package sshtest

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// startEcho starts a TCP echo server on 127.0.0.1.
func startEcho(t *testing.T) string {
	t.Helper()
	return Serve(t, "tcp", "127.0.0.1:0", Echo)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read %q back: %v", msg, err)
	}
	if got != msg+"\n" {
		t.Fatalf("got %q, want %q", got, msg+"\n")
	}
}

func TestRelay(t *testing.T) {
	r := StartRelay(t, startEcho(t))
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	roundTrip(t, c, br, "one")

	// Black-holed: the socket stays open and nothing comes back.
	r.BlackHole()
	if _, err := io.WriteString(c, "two\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("black hole delivered bytes")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("black hole: want a timeout, got %v", err)
	}
	// A new connection is accepted but silent too.
	c2, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	// Restored: what was held arrives, in order.
	r.Restore()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := br.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after restore got %q, %v", got, err)
	}
	roundTrip(t, c, br, "three")
	roundTrip(t, c2, bufio.NewReader(c2), "late")

	// Cut: the client sees the connection end; new ones still work.
	r.Cut()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("cut connection still delivers")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("cut connection did not end")
	}
	c3, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	roundTrip(t, c3, bufio.NewReader(c3), "again")
	if n := r.Accepted(); n != 3 {
		t.Fatalf("Accepted() = %d, want 3", n)
	}
}
