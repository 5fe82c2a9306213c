package mux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func str(s string) []byte { return append(u32(uint32(len(s))), s...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestNewSessionMessage pins the field order of mux.c's
// mux_client_request_session: reserved, tty, X11, agent, subsystem flag,
// escape char, TERM, command, environment.
func TestNewSessionMessage(t *testing.T) {
	cases := []struct {
		name string
		req  SessionRequest
		want []byte
	}{
		{"exec", SessionRequest{Command: "ls -l", Env: []string{"A=1", "B=two"}, Term: "xterm"},
			cat(u32(msgNewSession), u32(3), str(""), u32(0), u32(0), u32(0), u32(0), u32(0xffffffff), str("xterm"), str("ls -l"), str("A=1"), str("B=two"))},
		{"subsystem", SessionRequest{Subsystem: "mcp"},
			cat(u32(msgNewSession), u32(3), str(""), u32(0), u32(0), u32(0), u32(1), u32(0xffffffff), str(""), str("mcp"))},
		{"shell", SessionRequest{},
			cat(u32(msgNewSession), u32(3), str(""), u32(0), u32(0), u32(0), u32(0), u32(0xffffffff), str(""), str(""))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.req.message(3).frame()
			if err != nil {
				t.Fatal(err)
			}
			want := append(u32(uint32(len(c.want))), c.want...)
			if !bytes.Equal(got, want) {
				t.Fatalf("message\n got %x\nwant %x", got, want)
			}
		})
	}
}

func TestSessionRequestCheck(t *testing.T) {
	cases := []struct {
		name string
		req  SessionRequest
		ok   bool
	}{
		{"exec", SessionRequest{Command: "x"}, true},
		{"both", SessionRequest{Command: "x", Subsystem: "y"}, false},
		{"NUL in command", SessionRequest{Command: "a\x00b"}, false},
		{"NUL in env", SessionRequest{Env: []string{"A=\x00"}}, false},
		{"env without =", SessionRequest{Env: []string{"A"}}, false},
		{"env without a name", SessionRequest{Env: []string{"=x"}}, false},
		{"env with an empty value", SessionRequest{Env: []string{"A="}}, true},
	}
	for _, c := range cases {
		if err := c.req.check(); (err == nil) != c.ok {
			t.Errorf("%s: check = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

func TestParseFromMaster(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want fromMaster
		bad  bool
	}{
		{"hello", cat(u32(msgHello), u32(4)), fromMaster{Type: msgHello, Value: 4}, false},
		{"hello with info", cat(u32(msgHello), u32(4), str("info"), str("0")), fromMaster{Type: msgHello, Value: 4, ExtInfo: true}, false},
		{"hello with an unknown extension", cat(u32(msgHello), u32(4), str("x"), str("")), fromMaster{Type: msgHello, Value: 4}, false},
		{"hello, extension without value", cat(u32(msgHello), u32(4), str("info")), fromMaster{}, true},
		{"alive", cat(u32(msgAlive), u32(1), u32(99)), fromMaster{Type: msgAlive, ID: 1, Value: 99}, false},
		{"failure", cat(u32(msgFailure), u32(2), str("why")), fromMaster{Type: msgFailure, ID: 2, Reason: "why"}, false},
		{"failure without reason", cat(u32(msgFailure), u32(2)), fromMaster{}, true},
		{"exit", cat(u32(msgExit), u32(5), u32(3)), fromMaster{Type: msgExit, ID: 5, Value: 3}, false},
		{"exit cut short", cat(u32(msgExit), u32(5)), fromMaster{}, true},
		{"ok with trailing bytes", cat(u32(msgOK), u32(1), u32(0)), fromMaster{}, true},
		{"unknown", cat(u32(0x12345678)), fromMaster{}, true},
		{"a string past the end", cat(u32(msgDenied), u32(1), u32(1<<31)), fromMaster{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseFromMaster(c.body)
			var pe *ProtocolError
			if c.bad {
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v, want a ProtocolError", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestReadMessageBounds(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		ok   bool
		eof  bool
	}{
		{"at the limit", append(u32(MaxMessage), make([]byte, MaxMessage)...), true, false},
		{"over the limit", u32(MaxMessage + 1), false, false},
		{"the largest length", u32(0xffffffff), false, false},
		{"shorter than a type", append(u32(3), 0, 0, 0), false, false},
		{"cut short", append(u32(8), 0, 0), false, true},
		{"empty", nil, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readMessage(bytes.NewReader(c.in))
			var pe *ProtocolError
			switch {
			case c.ok && err != nil:
				t.Fatalf("err = %v", err)
			case c.eof && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("err = %v, want an end of input", err)
			case !c.ok && !c.eof && !errors.As(err, &pe):
				t.Fatalf("err = %v, want a ProtocolError", err)
			}
		})
	}
}

// FuzzReadMessage feeds arbitrary bytes to both sides' parsers: no panic,
// nothing over the bound, every refusal a ProtocolError or an end.
func FuzzReadMessage(f *testing.F) {
	f.Add(cat(u32(8), u32(msgHello), u32(4)))
	f.Add(cat(u32(12), u32(msgAlive), u32(1), u32(2)))
	sess, _ := SessionRequest{Command: "ls", Env: []string{"A=1"}}.message(1).frame()
	f.Add(sess)
	f.Add(cat(u32(16), u32(msgHello), u32(4), str("info")))
	f.Add(u32(0xffffffff))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for range 16 {
			body, err := readMessage(r)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if len(body) > MaxMessage {
				t.Fatalf("a body of %d bytes", len(body))
			}
			for _, err := range []error{second(parseFromMaster(body)), second(parseFromClient(body))} {
				var pe *ProtocolError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("unexpected error kind: %v", err)
				}
			}
			if m, err := parseFromClient(body); err == nil && len(m.Env) > maxEnv {
				t.Fatalf("%d environment strings kept", len(m.Env))
			}
		}
	})
}

func second[T any](_ T, err error) error { return err }

// FuzzNewSessionRoundTrip: what the client encodes, the server reads back
// as it was asked.
func FuzzNewSessionRoundTrip(f *testing.F) {
	f.Add("ls -l", "", "A=1", "xterm")
	f.Add("", "mcp", "", "")
	f.Fuzz(func(t *testing.T, cmd, subsystem, env, term string) {
		req := SessionRequest{Command: cmd, Subsystem: subsystem, Term: term}
		if env != "" {
			req.Env = []string{env}
		}
		if req.check() != nil {
			return
		}
		b, err := req.message(7).frame()
		if err != nil {
			return // over the limit: refused before sending
		}
		body, err := readMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseFromClient(body)
		if err != nil {
			t.Fatal(err)
		}
		want := fromClient{Type: msgNewSession, ID: 7, Subsystem: subsystem != "", EscapeChar: noEscapeChar, Term: term, Command: cmd + subsystem, Env: req.Env}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("read back %+v, want %+v", m, want)
		}
	})
}
