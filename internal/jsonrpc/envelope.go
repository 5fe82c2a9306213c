package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"strconv"
)

// Kind is what a JSON-RPC frame is, as far as the bridge cares.
type Kind uint8

const (
	KindInvalid      Kind = iota
	KindRequest           // has a method and an id: wants exactly one response
	KindNotification      // has a method and no id
	KindResponse          // has result or error, and an id
	KindBatch             // a JSON array of messages
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindBatch:
		return "batch"
	}
	return "invalid"
}

// Envelope is the part of a frame the bridge reads: its kind, its id and
// its method. ID and Method alias the frame they were parsed from.
type Envelope struct {
	Kind Kind
	// ID is the id's raw JSON (a number, a string with its quotes, or
	// null); nil when the frame has none.
	ID []byte
	// Method is the method name as it stands between its quotes.
	Method []byte
	// Error is set for a response that carries an error rather than a
	// result.
	Error bool
}

var errNotJSON = errors.New("not a JSON-RPC message")

// ParseEnvelope reads the top-level keys of one JSON-RPC message. It stops
// as soon as the kind and id are known, so a large result or params value
// is not walked when it follows them, as encoders put it. It does not
// validate the whole frame (callers that must, use Valid), but an id
// it returns is always a JSON string, number or null.
func ParseEnvelope(frame []byte) (Envelope, error) {
	var env Envelope
	s := scanner{b: frame}
	s.space()
	switch s.peek() {
	case '[':
		env.Kind = KindBatch
		return env, nil
	case '{':
		s.i++
	default:
		return env, errNotJSON
	}
	var hasMethod, hasResult bool
	s.space()
	if s.peek() == '}' {
		return env, errNotJSON
	}
	for {
		s.space()
		key, ok := s.str()
		if !ok {
			return env, errNotJSON
		}
		s.space()
		if s.peek() != ':' {
			return env, errNotJSON
		}
		s.i++
		s.space()
		start := s.i
		switch string(key) {
		case "id":
			// Only a string, number or null is an id: anything else
			// (1x, Infinity) must never be echoed into a message.
			if !s.value() || !validID(frame[start:s.i]) {
				return env, errNotJSON
			}
			env.ID = frame[start:s.i]
		case "method":
			m, ok := s.str()
			if !ok {
				return env, errNotJSON
			}
			env.Method, hasMethod = m, true
		case "result", "error":
			hasResult = true
			env.Error = string(key) == "error"
			if env.ID != nil {
				env.Kind = KindResponse
				return env, nil
			}
			if !s.value() {
				return env, errNotJSON
			}
		default:
			if !s.value() {
				return env, errNotJSON
			}
		}
		if hasMethod && env.ID != nil {
			env.Kind = KindRequest
			return env, nil
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
			continue
		case '}':
		default:
			return env, errNotJSON
		}
		break
	}
	switch {
	case hasMethod:
		env.Kind = KindNotification
	case hasResult:
		env.Kind = KindResponse
	default:
		return env, errNotJSON
	}
	return env, nil
}

// Elements returns the messages of a batch frame (a JSON array), each a
// slice of frame. Like ParseEnvelope it finds boundaries without
// validating what lies between them.
func Elements(frame []byte) ([][]byte, error) {
	s := scanner{b: frame}
	s.space()
	if s.peek() != '[' {
		return nil, errNotJSON
	}
	s.i++
	s.space()
	var elems [][]byte
	if s.peek() == ']' {
		return elems, nil
	}
	for {
		s.space()
		start := s.i
		if !s.value() {
			return nil, errNotJSON
		}
		elems = append(elems, frame[start:s.i])
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return elems, nil
		default:
			return nil, errNotJSON
		}
	}
}

// scanner walks JSON text just well enough to find value boundaries.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str reads a string and returns its raw contents between the quotes.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start := s.i + 1
	end, ok := stringEnd(s.b, start)
	if !ok {
		return nil, false
	}
	s.i = end + 1
	return s.b[start:end], true
}

// stringEnd returns the index of the quote that closes the string whose
// contents start at i.
func stringEnd(b []byte, i int) (int, bool) {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, false
		}
		j += i
		// The quote is escaped when an odd number of backslashes
		// precede it.
		n := 0
		for k := j - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j, true
		}
		i = j + 1
	}
}

// value skips one value of any type.
func (s *scanner) value() bool {
	switch c := s.peek(); c {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		return s.composite()
	case 0:
		return false
	default:
		// A number, true, false or null: up to the next delimiter.
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}

// composite skips an object or array, strings inside it included.
func (s *scanner) composite() bool {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			end, ok := stringEnd(s.b, s.i+1)
			if !ok {
				return false
			}
			s.i = end + 1
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return true
			}
		}
		s.i++
	}
	return false
}

// IDKey is the key under which an id (raw JSON, as Envelope.ID) is kept on
// the books: one key for every spelling of one value, since a host
// compares ids by value and a peer may re-encode one it echoes ("\u00e9"
// for "é", 1.0 or 1e0 for 1) and its answer must still find its request.
// The usual spellings (a plain integer, a string without escapes) are
// their own key, at no cost.
func IDKey(id []byte) string {
	if len(id) == 0 {
		return ""
	}
	switch c := id[0]; {
	case c == '"':
		if bytes.IndexByte(id, '\\') < 0 {
			return string(id)
		}
		var s string
		if json.Unmarshal(id, &s) != nil {
			return string(id)
		}
		return `"` + s + `"`
	case c == '-' || (c >= '0' && c <= '9'):
		if plainInteger(id) {
			return string(id)
		}
		if len(id) > maxIDNumber || hugeExponent(id) {
			return string(id)
		}
		var r big.Rat
		if _, ok := r.SetString(string(id)); !ok {
			return string(id)
		}
		return r.RatString()
	}
	return string(id)
}

// maxIDNumber and maxIDExponent bound the numbers IDKey works out
// exactly: big.Rat would expand "1e99999999" into a hundred million
// digits. Other spellings are their own key.
const (
	maxIDNumber   = 64
	maxIDExponent = 64
)

// hugeExponent reports whether the number b has an exponent beyond
// maxIDExponent either way.
func hugeExponent(b []byte) bool {
	i := bytes.IndexAny(b, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(string(b[i+1:]))
	return err != nil || e > maxIDExponent || e < -maxIDExponent
}

// plainInteger reports whether b is an integer in its one canonical JSON
// spelling: no fraction, exponent, leading zero or minus zero.
func plainInteger(b []byte) bool {
	if b[0] == '-' {
		b = b[1:]
		if len(b) == 0 || b[0] == '0' {
			return false
		}
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
