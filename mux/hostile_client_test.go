//go:build linux

package mux_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// plainServer is a Server whose Open always fails (no sshd needed): what
// a hostile client can make of it is the question.
type plainServer struct {
	path   string
	opened atomic.Int32
	log    *sshtest.Buffer
}

func startPlainServer(t *testing.T) *plainServer {
	t.Helper()
	s := &plainServer{log: &sshtest.Buffer{}}
	l, err := mux.Listen(filepath.Join(shortDir(t), "cm"))
	if err != nil {
		t.Fatal(err)
	}
	s.path = l.Path()
	srv := &mux.Server{
		Open: func(context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
			s.opened.Add(1)
			return nil, nil, errors.New("no channels in this test")
		},
		Logger: slog.New(slog.NewTextHandler(s.log, nil)),
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		l.Close()
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	return s
}

// rawConn is a client that speaks bytes, not the protocol.
type rawConn struct {
	*net.UnixConn
	r *bufio.Reader
}

func rawDial(t *testing.T, path string) *rawConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hangBound))
	return &rawConn{c, bufio.NewReader(c)}
}

// body reads one message's body, or fails with the read's error.
func (c *rawConn) body() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 1<<20 {
		return nil, errors.New("the server sent an oversized message")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// rest reads every message until the server closes the connection; an
// error other than the end (a timeout: the server kept it open) fails.
func (c *rawConn) rest(t *testing.T) [][]byte {
	t.Helper()
	var got [][]byte
	for {
		b, err := c.body()
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return got
		}
		if err != nil {
			t.Fatalf("reading until the server closes: %v (after %d messages)", err, len(got))
		}
		got = append(got, b)
	}
}

// passFDs sends one byte carrying fds in one SCM_RIGHTS message.
func (c *rawConn) passFDs(t *testing.T, fds ...int) {
	t.Helper()
	if _, _, err := c.WriteMsgUnix([]byte{0}, unix.UnixRights(fds...), nil); err != nil {
		t.Fatal(err)
	}
}

// pipeEnd is the write end of a pipe whose read end tells whether every
// copy of the write end was closed.
func pipeEnd(t *testing.T) (w *os.File, closedEverywhere func() bool) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return w, func() bool {
		w.Close()
		r.SetReadDeadline(time.Now().Add(hangBound))
		_, err := r.Read(make([]byte, 1))
		return errors.Is(err, io.EOF)
	}
}

func typeOf(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func newSessionMsg(cmd string) []byte {
	return msg(tNewSession, 1, "", 0, 0, 0, 0, 0xffffffff, "", cmd)
}

func TestServerHostileClient(t *testing.T) {
	hello := msg(tHello, 4)
	cases := []struct {
		name  string
		send  func(t *testing.T, c *rawConn)
		close bool   // the server ends the connection
		reply uint32 // the type of the last answer, 0 for none
		why   string // in the last answer
	}{
		{"a request before the hello", func(t *testing.T, c *rawConn) { c.Write(msg(tAliveCheck, 1)) }, true, 0, ""},
		{"version 3", func(t *testing.T, c *rawConn) { c.Write(msg(tHello, 3)) }, true, 0, ""},
		{"a second hello", func(t *testing.T, c *rawConn) { c.Write(append(hello, hello...)) }, true, 0, ""},
		{"an oversized length", func(t *testing.T, c *rawConn) { c.Write(append(hello, 0xff, 0xff, 0xff, 0xff)) }, true, 0, ""},
		{"one byte over the limit", func(t *testing.T, c *rawConn) {
			c.Write(binary.BigEndian.AppendUint32(hello, mux.MaxMessage+1))
		}, true, 0, ""},
		{"a length too short", func(t *testing.T, c *rawConn) { c.Write(append(hello, 0, 0, 0, 1, 0)) }, true, 0, ""},
		{"a command longer than its message", func(t *testing.T, c *rawConn) {
			m := newSessionMsg("x")
			binary.BigEndian.PutUint32(m[len(m)-5:], 1<<20)
			c.Write(append(hello, m...))
		}, true, 0, ""},
		{"a NUL in the command", func(t *testing.T, c *rawConn) { c.Write(append(hello, newSessionMsg("a\x00b")...)) }, true, 0, ""},
		{"a session without descriptors", func(t *testing.T, c *rawConn) {
			c.Write(append(append(hello, newSessionMsg("x")...), 0, 0, 0))
		}, true, tFailure, "did not receive file descriptors"},
		{"an unknown request", func(t *testing.T, c *rawConn) {
			c.Write(append(append(hello, msg(0x10000099, 5)...), msg(tAliveCheck, 6)...))
		}, false, tAlive, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startPlainServer(t)
			conn := rawDial(t, s.path)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c.send(t, conn)
			var got [][]byte
			if c.close {
				got = sshtest.Within(t, hangBound, func() [][]byte { return conn.rest(t) })
			} else {
				for range 3 { // hello, the refusal, the answer
					b, err := conn.body()
					if err != nil {
						t.Fatalf("message %d: %v", len(got), err)
					}
					got = append(got, b)
				}
				if typeOf(got[1]) != tFailure || !strings.Contains(string(got[1]), "unsupported request") {
					t.Errorf("the unknown request's answer: %q", got[1])
				}
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("allocated %d bytes for one hostile exchange", grew)
			}
			if len(got) == 0 || typeOf(got[0]) != tHello {
				t.Fatalf("the server's first message: %q, want its hello", got)
			}
			last := got[len(got)-1]
			if c.reply == 0 && len(got) > 1 || c.reply != 0 && (typeOf(last) != c.reply || !strings.Contains(string(last), c.why)) {
				t.Fatalf("the server's messages: %q; want a last answer of type %#x saying %q", got, c.reply, c.why)
			}
			if n := s.opened.Load(); n != 0 {
				t.Fatalf("the hostile client made the server open %d channels", n)
			}
			// And the server goes on serving others.
			if _, err := dial(t, s.path).Check(timeout(t, hangBound)); err != nil {
				t.Fatalf("a well-behaved client after the hostile one: %v", err)
			}
		})
	}
}

// TestServerClosesPassedDescriptors: whatever happens to a request, the
// descriptors passed with it are closed, never leaked or used.
func TestServerClosesPassedDescriptors(t *testing.T) {
	hello := msg(tHello, 4)
	cases := []struct {
		name  string
		msg   []byte
		fds   int    // descriptors sent
		batch bool   // all in one SCM_RIGHTS message, not one a byte
		reply uint32 // 0: the connection ends, after a failure or none
		why   string
	}{
		{"too many at once", newSessionMsg("x"), 5, true, 0, ""},
		{"a stdio forwarding", msg(0x10000008, 1, "", "127.0.0.1", "22"), 2, false, 0x80000002, "stdio forwarding is not offered"},
		{"a session whose channel cannot open", newSessionMsg("x"), 3, false, tFailure, "could not be opened"},
		{"descriptors with an alive check", msg(tAliveCheck, 1), 3, true, tAlive, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startPlainServer(t)
			conn := rawDial(t, s.path)
			conn.Write(append(hello, c.msg...))
			var checks []func() bool
			var fds []int
			for range c.fds {
				w, closed := pipeEnd(t)
				checks = append(checks, closed)
				fds = append(fds, int(w.Fd()))
			}
			if c.batch {
				conn.passFDs(t, fds...)
			} else {
				for _, fd := range fds {
					conn.passFDs(t, fd)
				}
			}
			if b, err := conn.body(); err != nil || typeOf(b) != tHello {
				t.Fatalf("the hello: %q, %v", b, err)
			}
			b, err := conn.body()
			if c.reply == 0 {
				if err == nil && typeOf(b) == tFailure {
					b, err = conn.body()
				}
				if err == nil {
					t.Fatalf("an answer %q where the server should close the connection", b)
				}
			} else if err != nil || typeOf(b) != c.reply || !strings.Contains(string(b), c.why) {
				t.Fatalf("the answer: %q, %v; want type %#x saying %q", b, err, c.reply, c.why)
			}
			if c.name == "descriptors with an alive check" {
				conn.Close() // the descriptors were queued, unused; the end closes them
			}
			for i, closed := range checks {
				if !sshtest.Within(t, hangBound, closed) {
					t.Errorf("descriptor %d is still open somewhere", i)
				}
			}
		})
	}
}

// TestServerRefusesOtherUser: a peer of another uid gets nothing, not
// even the hello, however the socket's mode lets it connect.
func TestServerRefusesOtherUser(t *testing.T) {
	uid, gid := otherUser(t)
	s := startPlainServer(t)
	// Let the other user reach the socket: the uid check must hold alone.
	if err := os.Chmod(filepath.Dir(s.path), 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(s.path, 0o666)
	// The other user's client is a real one: ssh -O check.
	cmd := exec.Command(sshtest.LookPath(t, "ssh"), "-F", "/dev/null", "-S", s.path, "-O", "check", "x")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = []string{"HOME=/", "PATH=/usr/bin:/bin"}
	out := sshtest.Within(t, hangBound, func() []byte { out, _ := cmd.CombinedOutput(); return out })
	if code := cmd.ProcessState.ExitCode(); code == 0 || strings.Contains(string(out), "Master running") {
		t.Fatalf("ssh -O check as uid %d: exit %d, %q; want a failure", uid, code, out)
	}
	if !strings.Contains(s.log.String(), "another user") || !strings.Contains(s.log.String(), "uid="+strconv.Itoa(uid)) {
		t.Fatalf("the server's log does not say it refused uid %d:\n%s", uid, s.log.String())
	}
	chmod(s.path, 0o600)
	if _, err := dial(t, s.path).Check(timeout(t, hangBound)); err != nil {
		t.Fatalf("our own client after the refusal: %v", err)
	}
}

// TestServerBoundsConnections: past MaxConns, a connection is closed at
// once, without a hello; closing one makes room.
func TestServerBoundsConnections(t *testing.T) {
	s := startPlainServer(t)
	var conns []*rawConn
	for i := range mux.MaxConns {
		c := rawDial(t, s.path)
		if b, err := c.body(); err != nil || typeOf(b) != tHello {
			t.Fatalf("connection %d: %q, %v; want a hello", i, b, err)
		}
		conns = append(conns, c)
	}
	over := rawDial(t, s.path)
	if got := sshtest.Within(t, hangBound, func() [][]byte { return over.rest(t) }); len(got) != 0 {
		t.Fatalf("connection %d got %q, want nothing", mux.MaxConns+1, got)
	}
	if !strings.Contains(s.log.String(), "control connections are open") {
		t.Errorf("the refusal is not logged:\n%s", s.log.String())
	}
	conns[0].Close()
	// The server notices the close when it reads; a new client may race
	// it, so a refusal here is retried, within the hang bound.
	deadline := time.Now().Add(hangBound)
	for {
		c, err := mux.Dial(timeout(t, hangBound), s.path)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a connection closed: %v", err)
		}
	}
}
