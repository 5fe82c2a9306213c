package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// A FrameReader reads newline-delimited JSON-RPC frames of any size.
//
// A frame that fits in the reader's buffer is returned without a copy;
// a larger one is gathered into a buffer that is kept for the next large
// frame and released once it is much larger than the frames that follow.
type FrameReader struct {
	br  *bufio.Reader
	acc []byte
}

// frameBufferSize fits typical MCP frames (requests, small results) so that
// they are never copied on the way through.
const frameBufferSize = 256 << 10

// keepAccumulator is the largest gathering buffer kept between frames.
const keepAccumulator = 4 << 20

// NewFrameReader returns a FrameReader reading from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{br: bufio.NewReaderSize(r, frameBufferSize)}
}

// Next returns the next frame, ending in a single '\n' (a "\r\n" line end
// is turned into "\n"; a last line without one gets one). Blank lines are
// skipped. The frame is only valid until the next call to Next. At the end
// of input Next returns io.EOF; a partial frame cut off by another error is
// never returned.
func (fr *FrameReader) Next() ([]byte, error) {
	if cap(fr.acc) > keepAccumulator {
		fr.acc = nil
	}
	for {
		line, err := fr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			fr.acc = append(fr.acc[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = fr.br.ReadSlice('\n')
				fr.acc = append(fr.acc, line...)
			}
			line = fr.acc
		}
		switch {
		case err == nil:
		case err == io.EOF && len(line) > 0:
			// The last frame may lack its newline; it is still whole.
			if line[len(line)-1] != '\n' {
				fr.acc = append(append(fr.acc[:0], line...), '\n')
				line = fr.acc
			}
		default:
			return nil, err
		}
		if n := len(line); n >= 2 && line[n-2] == '\r' {
			line[n-2] = '\n'
			line = line[:n-1]
		}
		if !blank(line) {
			return line, nil
		}
	}
}

// Buffered reports whether a whole or partial frame is already waiting, so
// that a writer can hold back a flush until a burst is over.
func (fr *FrameReader) Buffered() bool { return fr.br.Buffered() > 0 }

func blank(line []byte) bool {
	return len(bytes.TrimSpace(line)) == 0
}

// lineSeparators are the raw characters, besides \n and \r, at which
// Python's str.splitlines() breaks a line: U+0085, U+2028, U+2029.
var lineSeparators = [...]struct{ raw, escaped string }{
	{"\xc2\x85", `\u0085`},
	{"\xe2\x80\xa8", `\u2028`},
	{"\xe2\x80\xa9", `\u2029`},
}

// appendSafe appends frame to dst with the raw line separators U+0085,
// U+2028 and U+2029 written as JSON escapes. In valid JSON they can only
// stand inside strings, where the escape means the same text; servers that
// split their input with Python's str.splitlines() would otherwise cut the
// frame in two there.
func appendSafe(dst, frame []byte) []byte {
	// next[k] is the offset in frame of the next lineSeparators[k], or -1;
	// each is searched for again only after it has been passed, so a frame
	// is scanned once per separator kind.
	var next [len(lineSeparators)]int
	for k, sep := range lineSeparators {
		next[k] = bytes.Index(frame, []byte(sep.raw))
	}
	pos := 0
	for {
		k := -1
		for j, n := range next {
			if n >= 0 && (k < 0 || n < next[k]) {
				k = j
			}
		}
		if k < 0 {
			return append(dst, frame[pos:]...)
		}
		sep := lineSeparators[k]
		dst = append(append(dst, frame[pos:next[k]]...), sep.escaped...)
		pos = next[k] + len(sep.raw)
		if n := bytes.Index(frame[pos:], []byte(sep.raw)); n >= 0 {
			next[k] = pos + n
		} else {
			next[k] = -1
		}
	}
}
