//go:build linux

package mux_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// The protocol's numbers, written out here so that the fakes do not share
// the package's own (a wrong constant would fool both sides).
const (
	tHello         = 0x00000001
	tNewSession    = 0x10000002
	tAliveCheck    = 0x10000004
	tOK            = 0x80000001
	tFailure       = 0x80000003
	tExit          = 0x80000004
	tAlive         = 0x80000005
	tSessionOpened = 0x80000006
)

// msg builds a message from uint32 and string fields, length first.
func msg(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		switch v := f.(type) {
		case int:
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case string:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// readMsg reads one message a client sent: its type and request id.
func readMsg(r *bufio.Reader) (typ, id uint32, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, 0, err
	}
	typ = binary.BigEndian.Uint32(body)
	if len(body) >= 8 {
		id = binary.BigEndian.Uint32(body[4:])
	}
	return typ, id, nil
}

// fakeMaster listens on a trusted socket and runs script on each
// connection; the connection stays open until script returns and then
// until the test ends if hold is set.
func fakeMaster(t *testing.T, hold bool, script func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "cm")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if err := chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				script(c, bufio.NewReader(c))
				if hold {
					<-done
				}
			}()
		}
	}()
	return path
}

// helloThen answers the client's hello properly, then runs rest.
func helloThen(rest func(c net.Conn, r *bufio.Reader)) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		if typ, _, err := readMsg(r); err != nil || typ != tHello {
			return
		}
		c.Write(msg(tHello, 4))
		rest(c, r)
	}
}

// session answers a new session, skipping the three descriptors' bytes.
func session(rest func(c net.Conn, r *bufio.Reader, id uint32)) func(net.Conn, *bufio.Reader) {
	return helloThen(func(c net.Conn, r *bufio.Reader) {
		typ, id, err := readMsg(r)
		if err != nil || typ != tNewSession {
			return
		}
		if _, err := r.Discard(3); err != nil {
			return
		}
		c.Write(msg(tSessionOpened, id, 7))
		rest(c, r, 7)
	})
}

func silent(net.Conn, *bufio.Reader) {}

func write(b ...[]byte) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, _ *bufio.Reader) {
		for _, p := range b {
			c.Write(p)
		}
	}
}

// TestClientHostileMaster: a master that breaks the protocol, or never
// answers, gives a typed error or the context's, promptly, with what it
// allocates bounded.
func TestClientHostileMaster(t *testing.T) {
	cases := []struct {
		name   string
		hold   bool
		script func(net.Conn, *bufio.Reader)
		call   string // dial, check, wait
		want   string // protocol, ctx, gone, refused
	}{
		{"never answers the hello", true, silent, "dial", "ctx"},
		{"half a hello, then silence", true, write([]byte{0, 0, 0, 8, 0, 0}), "dial", "ctx"},
		{"closes at once", false, silent, "dial", "gone"},
		{"an oversized hello", true, write([]byte{0xff, 0xff, 0xff, 0xff}), "dial", "protocol"},
		{"one byte over the limit", true, write(binary.BigEndian.AppendUint32(nil, mux.MaxMessage+1)), "dial", "protocol"},
		{"a length too short for a type", true, write([]byte{0, 0, 0, 2, 0, 0}), "dial", "protocol"},
		{"version 3", true, write(msg(tHello, 3)), "dial", "protocol"},
		{"not a hello first", true, write(msg(tOK, 0)), "dial", "protocol"},
		{"an unknown type", true, write(msg(0x7777, 0)), "dial", "protocol"},
		{"an extension cut short", true, write([]byte{0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 100, 'a'}), "dial", "protocol"},
		{"an extension name with a NUL", true, write(msg(tHello, 4, "in\x00fo", "")), "dial", "protocol"},
		{"the alive check never answered", true, helloThen(silent), "check", "ctx"},
		{"the alive check answered for another id", true, helloThen(func(c net.Conn, r *bufio.Reader) {
			_, id, _ := readMsg(r)
			c.Write(msg(tAlive, id+1, 1))
		}), "check", "protocol"},
		{"the alive check answered with an exit", true, helloThen(func(c net.Conn, r *bufio.Reader) {
			_, id, _ := readMsg(r)
			c.Write(msg(tExit, id, 1))
		}), "check", "protocol"},
		{"the alive check refused", true, helloThen(func(c net.Conn, r *bufio.Reader) {
			_, id, _ := readMsg(r)
			c.Write(msg(tFailure, id, "no"))
		}), "check", "refused"},
		{"the alive check answered with trailing bytes", true, helloThen(func(c net.Conn, r *bufio.Reader) {
			_, id, _ := readMsg(r)
			c.Write(msg(tAlive, id, 1, 2))
		}), "check", "protocol"},
		{"the session ends without an exit message", false, session(func(net.Conn, *bufio.Reader, uint32) {}), "wait", "gone"},
		{"an exit message for another session", false, session(func(c net.Conn, _ *bufio.Reader, sid uint32) {
			c.Write(msg(tExit, sid+1, 0))
		}), "wait", "protocol"},
		{"the exit message twice", false, session(func(c net.Conn, _ *bufio.Reader, sid uint32) {
			c.Write(append(msg(tExit, sid, 0), msg(tExit, sid, 1)...))
		}), "wait", "protocol"},
		{"an oversized message in the session", true, session(func(c net.Conn, _ *bufio.Reader, sid uint32) {
			c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		}), "wait", "protocol"},
		{"an alive answer in the session", false, session(func(c net.Conn, _ *bufio.Reader, sid uint32) {
			c.Write(msg(tAlive, 1, 1))
		}), "wait", "protocol"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fakeMaster(t, c.hold, c.script)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := sshtest.Within(t, hangBound, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				cl, err := mux.Dial(ctx, path)
				if c.call == "dial" || err != nil {
					return err
				}
				defer cl.Close()
				if c.call == "check" {
					_, err := cl.Check(ctx)
					return err
				}
				p := newStdio(t)
				s, err := cl.NewSession(ctx, mux.SessionRequest{Command: "x"}, p.farIn, p.farOut, p.farErr)
				if err != nil {
					return err
				}
				_, err = s.Wait()
				return err
			})
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("allocated %d bytes for one hostile exchange", grew)
			}
			var pe *mux.ProtocolError
			var re *mux.RefusedError
			switch ok := false; c.want {
			case "protocol":
				ok = errors.As(err, &pe) && pe.Path == path
				if !ok {
					t.Fatalf("err = %v, want a ProtocolError naming %s", err, path)
				}
			case "ctx":
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want the context's deadline", err)
				}
			case "gone":
				if !errors.Is(err, mux.ErrMasterGone) {
					t.Fatalf("err = %v, want ErrMasterGone", err)
				}
			case "refused":
				if !errors.As(err, &re) || re.Reason != "no" {
					t.Fatalf("err = %v, want a RefusedError saying no", err)
				}
			}
			if strings.Contains(err.Error(), "mux") {
				t.Errorf("the error names the package: %v", err)
			}
		})
	}
}
