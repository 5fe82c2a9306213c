package transport

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"
)

// A pipe is read and written with raw calls; a stream far larger than the
// pipe's buffer arrives whole, both ends waiting in the poller when the
// pipe is full or empty, and the end of input is io.EOF.
func TestStdioRaw(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Stdio gives a pipe raw calls, on a duplicate of its descriptor;
	// the stream below uses the pipe's own, so that closing w ends it.
	p, q, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer q.Close()
	for _, f := range []*os.File{p, q} {
		if got, ok := Stdio(f).(rawIO); !ok {
			t.Fatalf("Stdio(pipe) = %T, want rawIO", got)
		}
	}
	rr, ww := rawFile(r), rawFile(w)
	want := make([]byte, 3*rawChunk+12345)
	for i := range want {
		want[i] = byte(rand.N(256))
	}
	wrote := make(chan error, 1)
	go func() {
		n, err := ww.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		w.Close()
		wrote <- err
	}()
	got, err := io.ReadAll(rr)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
}

// A read waiting in the poller ends when the descriptor is closed.
func TestStdioCloseWhileReading(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rr := rawFile(r)
	done := make(chan error, 1)
	go func() {
		_, err := rr.Read(make([]byte, 10))
		done <- err
	}()
	// The reader is either waiting or about to; either way it must end.
	r.Close()
	_ = rr
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("read after close: %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read waiting on a closed pipe did not end")
	}
}

// A TCP connection carries large writes both ways through raw calls, and
// keeps its deadlines and its close.
func TestFastConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := fastConn(d)
	if _, ok := c.(*rawConn); !ok {
		t.Fatalf("fastConn(TCP) = %T, want *rawConn", c)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()

	// Echo: the peer sends back what it reads, while c writes 8 MiB,
	// more than both sockets' buffers hold, so both sides wait.
	go io.Copy(peer, peer)
	want := make([]byte, 8<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		wrote <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the echo differs from what was written")
	}

	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})

	peer.Close()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	c.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}
