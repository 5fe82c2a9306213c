package jsonrpc

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// A FrameReader reads newline-delimited JSON-RPC frames of any size.
//
// Frames are returned in place, from one buffer that the reader fills
// straight from its source: a frame is copied once, on its way in, however
// large it is. The buffer grows to hold the largest frame and is kept while
// large frames keep coming, so that a stream of them costs no allocations;
// after a run of frames much smaller than it, it goes back to its starting
// size. A frame longer than Max is never held whole: it is discarded as it
// streams, but for its first bytes, and Next reports it with a
// *FrameTooLargeError.
type FrameReader struct {
	// Max is the longest frame Next returns, newline not counted; 0
	// means no limit.
	Max   int
	r     io.Reader
	buf   []byte
	start int // buf[start:end] is read and not yet returned
	end   int
	err   error // from r, returned once the buffer is used up
	// small counts the frames in a row that would have fitted in a
	// quarter of buf.
	small int
	empty int // reads in a row that returned nothing
}

// frameBufferSize fits typical MCP frames (requests, small results), and
// is the size of each read from the source.
const frameBufferSize = 256 << 10

// growSlower is the buffer size from which it grows by half, not double.
const growSlower = 4 << 20

// shrinkAfter is how many small frames in a row give a grown buffer up.
const shrinkAfter = 16

// frameHead is how much of a frame over the limit is kept: enough to find
// its id and method, which encoders write before its params or result.
const frameHead = 4 << 10

// DefaultMaxFrame is the default limit on one frame each way: MCP's
// largest results (files, screenshots) are well under it, and it bounds
// what a broken or hostile peer can make m2m-ssh hold.
const DefaultMaxFrame = 64 << 20

// A FrameTooLargeError is a frame longer than the reader's Max. It was
// discarded as it streamed, all but its first bytes, and the stream goes
// on after it.
type FrameTooLargeError struct {
	Size  int64  // its length, newline not counted, as far as it was read
	Limit int    // the reader's Max
	Cut   bool   // the stream ended before the frame did
	Head  []byte // its first bytes, at most frameHead; valid until the next call to Next
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("a frame of %d bytes is over the limit of %d bytes", e.Size, e.Limit)
}

// NewFrameReader returns a FrameReader reading from r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r}
}

// Next returns the next frame, ending in a single '\n' (a "\r\n" line end
// is turned into "\n"; a last line without one gets one). Blank lines are
// skipped. The frame is only valid until the next call to Next. At the end
// of input Next returns io.EOF; a partial frame cut off by another error is
// never returned.
func (fr *FrameReader) Next() ([]byte, error) {
	for {
		line, err := fr.line()
		if err != nil {
			return nil, err
		}
		if n := len(line); n >= 2 && line[n-2] == '\r' {
			line[n-2] = '\n'
			line = line[:n-1]
		}
		if !blank(line) {
			return fr.account(line), nil
		}
	}
}

// line returns the next line, blank or not, with its '\n'.
func (fr *FrameReader) line() ([]byte, error) {
	if fr.buf == nil {
		fr.buf = make([]byte, frameBufferSize)
	}
	scanned := 0 // bytes of buf[start:end] known to hold no '\n'
	for {
		if i := bytes.IndexByte(fr.buf[fr.start+scanned:fr.end], '\n'); i >= 0 {
			if n := scanned + i; fr.Max > 0 && n > fr.Max {
				// Over the limit, but in the buffer already.
				head := fr.buf[fr.start : fr.start+min(n, frameHead) : fr.start+min(n, frameHead)]
				fr.start += n + 1
				return nil, &FrameTooLargeError{Size: int64(n), Limit: fr.Max, Head: head}
			}
			line := fr.buf[fr.start : fr.start+scanned+i+1]
			fr.start += scanned + i + 1
			return line, nil
		}
		scanned = fr.end - fr.start
		if fr.Max > 0 && scanned > fr.Max {
			return nil, fr.discard(scanned)
		}
		if fr.err != nil {
			if fr.err == io.EOF && scanned > 0 {
				// The last frame may lack its newline; it is
				// still whole.
				fr.room()
				fr.buf[fr.end] = '\n'
				line := fr.buf[fr.start : fr.end+1]
				fr.start = fr.end
				return line, nil
			}
			return nil, fr.err
		}
		fr.room()
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
		switch {
		case err != nil:
			fr.err = err
		case n > 0:
			fr.empty = 0
		default:
			// As bufio.Reader: a source that keeps returning
			// nothing is broken.
			if fr.empty++; fr.empty >= 100 {
				fr.err = io.ErrNoProgress
			}
		}
	}
}

// discard skips the rest of a frame over the limit, of which scanned bytes
// are in buf[start:end] with no newline among them, keeping its head. A
// grown buffer is given up at once, and the memory returned to the system:
// a frame over the limit is an attack or a bug, not a sign that more like
// it will follow.
func (fr *FrameReader) discard(scanned int) error {
	head := min(scanned, frameHead)
	size := int64(scanned)
	grown := len(fr.buf) > frameBufferSize
	if grown {
		buf := make([]byte, frameBufferSize)
		copy(buf, fr.buf[fr.start:fr.start+head])
		fr.buf = buf
	} else {
		copy(fr.buf, fr.buf[fr.start:fr.start+head])
	}
	fr.start, fr.end = head, head
	cut := false
	for {
		n, err := fr.r.Read(fr.buf[head:])
		// The head grows to frameHead; later bytes are read over.
		if i := bytes.IndexByte(fr.buf[head:head+n], '\n'); i >= 0 {
			size += int64(i)
			fr.start, fr.end = head+i+1, head+n
			head += min(i, frameHead-head)
			break
		}
		size += int64(n)
		head += min(n, frameHead-head)
		if err == nil && n == 0 {
			if fr.empty++; fr.empty >= 100 {
				err = io.ErrNoProgress
			}
		} else if n > 0 {
			fr.empty = 0
		}
		if err != nil {
			fr.err, cut = err, true
			break
		}
	}
	if grown {
		debug.FreeOSMemory()
	}
	fr.small = 0
	return &FrameTooLargeError{Size: size, Limit: fr.Max, Cut: cut, Head: fr.buf[:head:head]}
}

// room makes space after buf[start:end]: it moves the unread bytes to the
// front, and grows the buffer when they fill it: doubling it while it is
// small, by half beyond growSlower, so that the buffer a large frame
// leaves behind, and the garbage collector's goal, which is a multiple
// of what is live, stay close to the frame's size.
func (fr *FrameReader) room() {
	if fr.end < len(fr.buf) {
		return
	}
	unread := fr.end - fr.start
	if unread < len(fr.buf) {
		copy(fr.buf, fr.buf[fr.start:fr.end])
	} else {
		size := 2 * len(fr.buf)
		if len(fr.buf) >= growSlower {
			size = len(fr.buf) + len(fr.buf)/2
		}
		if fr.Max > 0 {
			// Room for the longest frame and the byte that shows a
			// line to be longer.
			size = min(size, fr.Max+1)
		}
		grown := make([]byte, size)
		copy(grown, fr.buf[fr.start:fr.end])
		fr.buf = grown
		if size > growSlower {
			// The collector's goal is twice what was live at its
			// last cycle, which may have been both the old buffer
			// and the new: collect now, while only the new one is,
			// or the heap may reach four times the frame before
			// the next cycle. Growing past the largest frame so far
			// is rare, and a cycle costs little: the buffers hold
			// no pointers to scan.
			runtime.GC()
		}
	}
	fr.start, fr.end = 0, unread
}

// account notes the size of a frame just returned, and gives a grown
// buffer back once it has not been needed for a while. It returns the
// frame, moved into the new buffer when the old one is given up, so that
// nothing holds the old one and its memory can go back to the system.
func (fr *FrameReader) account(line []byte) []byte {
	if len(fr.buf) <= frameBufferSize {
		return line
	}
	if len(line) > len(fr.buf)/4 {
		fr.small = 0
		return line
	}
	fr.small++
	if unread := fr.end - fr.start; fr.small >= shrinkAfter && len(line)+unread <= frameBufferSize {
		buf := make([]byte, frameBufferSize)
		n := copy(buf, line)
		fr.end = n + copy(buf[n:], fr.buf[fr.start:fr.end])
		release := len(fr.buf) > growSlower
		fr.buf, fr.start, fr.small = buf, n, 0
		line = buf[:n:n]
		if release {
			// The scavenger would return the old buffer's pages
			// over minutes; a peer's one large frame should not
			// cost its size in RSS for that long.
			debug.FreeOSMemory()
		}
	}
	return line
}

// Release gives a grown buffer up at once, keeping what is unread, for a
// caller that has copied the last frame out and may wait before it reads
// again: while it waits it holds no frame's worth of memory. The frame
// Next returned last is no longer valid. Streams of large frames are best
// read without it, reusing the buffer.
func (fr *FrameReader) Release() {
	if len(fr.buf) <= frameBufferSize || fr.end-fr.start > frameBufferSize {
		return
	}
	buf := make([]byte, frameBufferSize)
	fr.end = copy(buf, fr.buf[fr.start:fr.end])
	fr.buf, fr.start, fr.small = buf, 0, 0
}

// Buffered reports whether a whole frame is already waiting, so that a
// writer can hold back a flush until a burst is over: the next call to Next
// returns without reading. A partial frame does not count, since the peer
// may wait for an answer before it finishes it, and neither do blank
// lines, which Next skips.
func (fr *FrameReader) Buffered() bool {
	rest := fr.buf[fr.start:fr.end]
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return false
		}
		if !blank(rest[:i]) {
			return true
		}
		rest = rest[i+1:]
	}
}

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

// AppendSafe appends frame to dst with the raw line separators U+0085,
// U+2028 and U+2029 written as JSON escapes. In valid JSON they can only
// stand inside strings, where the escape means the same text; servers that
// split their input with Python's str.splitlines() would otherwise cut the
// frame in two there. For the same reason a raw carriage return, which
// valid JSON holds only as whitespace between tokens, is written as a
// space.
func AppendSafe(dst, frame []byte) []byte {
	start := len(dst)
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
			dst = append(dst, frame[pos:]...)
			out := dst[start:]
			for i := bytes.IndexByte(out, '\r'); i >= 0; i = bytes.IndexByte(out, '\r') {
				out[i] = ' '
				out = out[i+1:]
			}
			return dst
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
