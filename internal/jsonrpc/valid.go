package jsonrpc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// maxNesting is how deep arrays and objects may nest, as encoding/json
// allows: Valid accepts exactly what json.Valid accepts.
const maxNesting = 10000

// Valid reports whether b is one JSON value, surrounded by whitespace
// only, as json.Valid does. It checks every frame from the remote before it
// reaches the host, so it is built for the frames MCP carries (large
// results are mostly string contents): string contents are scanned eight
// bytes at a time, about four times as fast as json.Valid's byte-by-byte
// state machine (BenchmarkValidJSON).
func Valid(b []byte) bool {
	ok, _ := ValidFrame(b)
	return ok
}

// ValidFrame is Valid, and reports too whether a message of the frame
// (the frame, or an element of a batch) has the key "id" more than once.
// ParseEnvelope takes the first, a host's parser the last: the bridge
// would count an answer to one request that the host reads as another's.
func ValidFrame(b []byte) (ok, twoIDs bool) {
	v := validator{b: b}
	v.space()
	v.batch = v.i < len(b) && b[v.i] == '['
	if !v.value(0) {
		return false, false
	}
	v.space()
	return v.i == len(v.b), v.twoIDs
}

type validator struct {
	b      []byte
	i      int
	batch  bool // the frame is an array: its elements are messages
	twoIDs bool
}

func (v *validator) space() {
	for v.i < len(v.b) {
		switch v.b[v.i] {
		case ' ', '\t', '\n', '\r':
			v.i++
		default:
			return
		}
	}
}

func (v *validator) value(depth int) bool {
	if v.i >= len(v.b) {
		return false
	}
	switch c := v.b[v.i]; {
	case c == '"':
		v.i++
		return v.str()
	case c == '{':
		return v.object(depth + 1)
	case c == '[':
		return v.array(depth + 1)
	case c == '-' || c >= '0' && c <= '9':
		return v.number()
	case c == 't':
		return v.literal("true")
	case c == 'f':
		return v.literal("false")
	case c == 'n':
		return v.literal("null")
	}
	return false
}

func (v *validator) literal(word string) bool {
	if len(v.b)-v.i < len(word) || string(v.b[v.i:v.i+len(word)]) != word {
		return false
	}
	v.i += len(word)
	return true
}

func (v *validator) object(depth int) bool {
	if depth > maxNesting {
		return false
	}
	v.i++ // '{'
	v.space()
	if v.i < len(v.b) && v.b[v.i] == '}' {
		v.i++
		return true
	}
	// A message is the top-level object, or one directly in a batch.
	message := depth == 1 || depth == 2 && v.batch
	ids := 0
	for {
		if v.i >= len(v.b) || v.b[v.i] != '"' {
			return false
		}
		v.i++
		key := v.i
		if !v.str() {
			return false
		}
		if message && isID(v.b[key:v.i-1]) {
			if ids++; ids > 1 {
				v.twoIDs = true
			}
		}
		v.space()
		if v.i >= len(v.b) || v.b[v.i] != ':' {
			return false
		}
		v.i++
		v.space()
		if !v.value(depth) {
			return false
		}
		v.space()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.space()
		case '}':
			v.i++
			return true
		default:
			return false
		}
	}
}

func (v *validator) array(depth int) bool {
	if depth > maxNesting {
		return false
	}
	v.i++ // '['
	v.space()
	if v.i < len(v.b) && v.b[v.i] == ']' {
		v.i++
		return true
	}
	for {
		if !v.value(depth) {
			return false
		}
		v.space()
		if v.i >= len(v.b) {
			return false
		}
		switch v.b[v.i] {
		case ',':
			v.i++
			v.space()
		case ']':
			v.i++
			return true
		default:
			return false
		}
	}
}

// isID reports whether a key's raw contents spell "id", escapes decoded
// ("i\u0064" is "id" to a parser).
func isID(raw []byte) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == "id"
	}
	var key string
	return json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &key) == nil && key == "id"
}

// SWAR constants: a byte of each lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// specials marks, in each lane's high bit, the bytes of x that end a
// string's plain run: a quote, a backslash or a control character. The
// lowest marked lane is exact (a borrow only marks lanes above a match),
// which is all str needs.
func specials(x uint64) uint64 {
	ctl := (x - 0x20*lanes01) &^ x
	quote := x ^ '"'*lanes01
	quote = (quote - lanes01) &^ quote
	bslash := x ^ '\\'*lanes01
	bslash = (bslash - lanes01) &^ bslash
	return (ctl | quote | bslash) & lanes80
}

// str checks the rest of a string whose opening quote is behind v.i, and
// leaves v.i after its closing quote.
func (v *validator) str() bool {
	b := v.b
	i := v.i
	for {
		for len(b)-i >= 8 {
			if m := specials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '"':
			v.i = i + 1
			return true
		case c == '\\':
			if i+1 >= len(b) {
				return false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !hex4(b[i+2:i+6]) {
					return false
				}
				i += 6
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			i++
		}
	}
}

func hex4(b []byte) bool {
	for _, c := range b[:4] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number checks a number: -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?
func (v *validator) number() bool {
	b, i := v.b, v.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	v.i = i
	return true
}

// validID reports whether id, raw JSON, is an id JSON-RPC allows: a
// string, a number or null. Only such an id is used to build a message.
func validID(id []byte) bool {
	if len(id) == 0 {
		return false
	}
	v := validator{b: id}
	switch c := id[0]; {
	case c == '"':
		v.i = 1
		if !v.str() {
			return false
		}
	case c == 'n':
		if !v.literal("null") {
			return false
		}
	default:
		if !v.number() {
			return false
		}
	}
	return v.i == len(id)
}
