package mux

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// The protocol's version and message numbers (PROTOCOL.mux, mux.c).
const (
	protocolVersion = 4

	msgHello         = 0x00000001
	msgNewSession    = 0x10000002
	msgAliveCheck    = 0x10000004
	msgTerminate     = 0x10000005
	msgOpenFwd       = 0x10000006
	msgCloseFwd      = 0x10000007
	msgNewStdioFwd   = 0x10000008
	msgStopListening = 0x10000009
	msgProxy         = 0x1000000f
	msgExtInfo       = 0x20000001

	msgOK             = 0x80000001
	msgDenied         = 0x80000002
	msgFailure        = 0x80000003
	msgExit           = 0x80000004
	msgAlive          = 0x80000005
	msgSessionOpened  = 0x80000006
	msgRemotePort     = 0x80000007
	msgTTYAllocFailed = 0x80000008
	msgProxyOK        = 0x8000000f

	// noEscapeChar is the escape char field's "none".
	noEscapeChar = 0xffffffff
)

// maxEnv bounds the environment strings of one new-session request, as
// mux.c's MUX_MAX_ENV_VARS does; further ones are ignored as there.
const maxEnv = 4096

// readMessage reads one length-prefixed message body. A length over
// MaxMessage is refused before anything is allocated for it.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxMessage {
		return nil, &ProtocolError{Reason: fmt.Sprintf("a message of %d bytes, over the limit of %d", n, MaxMessage)}
	}
	if n < 4 {
		return nil, &ProtocolError{Reason: fmt.Sprintf("a message of %d bytes, too short for its type", n)}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// builder assembles one message: the length is filled in by frame.
type builder struct{ b []byte }

func newBuilder(typ uint32) *builder {
	b := &builder{b: make([]byte, 4, 64)}
	return b.u32(typ)
}

func (b *builder) u32(v uint32) *builder {
	b.b = binary.BigEndian.AppendUint32(b.b, v)
	return b
}

func (b *builder) bool(v bool) *builder {
	if v {
		return b.u32(1)
	}
	return b.u32(0)
}

func (b *builder) str(s string) *builder {
	b.u32(uint32(len(s)))
	b.b = append(b.b, s...)
	return b
}

// frame is the message with its length, ready to write; an error when it
// is over MaxMessage, which the peer would refuse.
func (b *builder) frame() ([]byte, error) {
	n := len(b.b) - 4
	if n > MaxMessage {
		return nil, fmt.Errorf("a request of %d bytes is over the protocol's limit of %d", n, MaxMessage)
	}
	binary.BigEndian.PutUint32(b.b, uint32(n))
	return b.b, nil
}

// parser reads fields from one message body; the first failure sticks.
type parser struct {
	b   []byte
	err error
}

func (p *parser) fail(what string) {
	if p.err == nil {
		p.err = &ProtocolError{Reason: "a malformed message: " + what}
	}
}

func (p *parser) u32(what string) uint32 {
	if p.err != nil {
		return 0
	}
	if len(p.b) < 4 {
		p.fail(what + " is cut short")
		return 0
	}
	v := binary.BigEndian.Uint32(p.b)
	p.b = p.b[4:]
	return v
}

func (p *parser) bytes(what string) []byte {
	n := p.u32(what)
	if p.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(p.b)) {
		p.fail(fmt.Sprintf("%s claims %d bytes, %d are left", what, n, len(p.b)))
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}

// cstr is a string that may not hold a NUL, as sshbuf_get_cstring reads.
func (p *parser) cstr(what string) string {
	v := p.bytes(what)
	if p.err == nil && strings.IndexByte(string(v), 0) >= 0 {
		p.fail(what + " holds a NUL byte")
		return ""
	}
	return string(v)
}

func (p *parser) more() bool { return p.err == nil && len(p.b) > 0 }

// fromMaster is a message a master sends, parsed.
type fromMaster struct {
	Type    uint32
	ID      uint32 // request id; the session id of an exit message or tty failure
	Value   uint32 // version, pid, session id, exit value or port, by Type
	Reason  string // of a failure or denial
	ExtInfo bool   // the hello announced the "info" extension
}

// parseFromMaster parses a message body a master sent. Types a client
// never expects are an error.
func parseFromMaster(body []byte) (fromMaster, error) {
	p := &parser{b: body}
	m := fromMaster{Type: p.u32("the type")}
	switch m.Type {
	case msgHello:
		m.Value = p.u32("the version")
		for p.more() {
			name := p.cstr("an extension's name")
			p.bytes("an extension's value")
			m.ExtInfo = m.ExtInfo || name == "info"
		}
	case msgOK, msgProxyOK:
		m.ID = p.u32("the request id")
	case msgDenied, msgFailure:
		m.ID = p.u32("the request id")
		m.Reason = p.cstr("the reason")
	case msgAlive, msgSessionOpened, msgRemotePort, msgExit:
		m.ID = p.u32("the request id")
		m.Value = p.u32("the value")
	case msgTTYAllocFailed:
		m.ID = p.u32("the session id")
	default:
		return m, &ProtocolError{Reason: fmt.Sprintf("an unknown message type 0x%08x", m.Type)}
	}
	if p.err == nil && len(p.b) > 0 && m.Type != msgHello {
		p.fail(fmt.Sprintf("%d bytes after the last field", len(p.b)))
	}
	return m, p.err
}

// fromClient is a message a client sends, parsed.
type fromClient struct {
	Type    uint32
	ID      uint32 // request id (0 for a hello)
	Version uint32 // of a hello
	// Of a new session:
	TTY, X11, Agent, Subsystem bool
	EscapeChar                 uint32
	Term, Command              string
	Env                        []string
}

// parseFromClient parses a message body a client sent. Request types this
// package does not serve parse as their type and id only: they are
// answered with a failure by id.
func parseFromClient(body []byte) (fromClient, error) {
	p := &parser{b: body}
	m := fromClient{Type: p.u32("the type")}
	if m.Type == msgHello {
		m.Version = p.u32("the version")
		for p.more() {
			p.cstr("an extension's name")
			p.bytes("an extension's value")
		}
		return m, p.err
	}
	m.ID = p.u32("the request id")
	if m.Type != msgNewSession {
		return m, p.err
	}
	p.bytes("the reserved field")
	m.TTY = p.u32("the tty flag") != 0
	m.X11 = p.u32("the X11 flag") != 0
	m.Agent = p.u32("the agent flag") != 0
	m.Subsystem = p.u32("the subsystem flag") != 0
	m.EscapeChar = p.u32("the escape char")
	m.Term = p.cstr("the terminal type")
	m.Command = p.cstr("the command")
	for p.more() {
		e := p.cstr("an environment string")
		if len(m.Env) < maxEnv {
			m.Env = append(m.Env, e)
		}
	}
	return m, p.err
}
