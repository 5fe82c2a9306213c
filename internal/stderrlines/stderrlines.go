// Package stderrlines reads the stderr of a program m2m-ssh does not
// control (the remote MCP server, a ProxyCommand) line by line, within
// bounds a log can take: each line cut at MaxLine as it streams, and no
// more than Rate lines a second after a Burst.
package stderrlines

import (
	"bufio"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// MaxLine bounds one line of the remote's or a ProxyCommand's stderr in
// the log: room for a long error message (a path, a URL, a JSON
// error), while a dump is cut and the rest of it skipped as it streams.
const MaxLine = 2048

// Rate bounds how many lines a second of the remote's or a
// ProxyCommand's stderr reach the log, after a burst of Burst (a
// start-up banner, a traceback): a program that floods its stderr must not
// flood the host's log or the disk under --log-file.
const (
	Rate  = 100
	Burst = 200
)

// Lines reads a program's stderr to its end, line by line, within
// the bounds above.
type Lines struct {
	// Line is called for each line that is logged, without its line
	// end; cut is how many bytes of it beyond MaxLine were skipped.
	Line func(text []byte, cut int64)
	// Dropped is called with the count of lines over the rate, before
	// the next line that is logged, or at the end.
	Dropped func(n int)
	Now     func() time.Time // the clock of the rate; nil for time.Now
}

// Read reads r until it ends or fails, holding at most MaxLine bytes
// of a line.
func (s Lines) Read(r io.Reader) {
	now := s.Now
	if now == nil {
		now = time.Now
	}
	br := bufio.NewReaderSize(r, MaxLine)
	text := make([]byte, 0, MaxLine)
	var cut int64
	tokens, last := float64(Burst), now()
	dropped := 0
	end := func() {
		text, cut = trimLine(text, cut)
		t := now()
		tokens = min(Burst, tokens+t.Sub(last).Seconds()*Rate)
		last = t
		if tokens < 1 {
			dropped++
		} else {
			tokens--
			if dropped > 0 {
				s.Dropped(dropped)
				dropped = 0
			}
			s.Line(text, cut)
		}
		text, cut = text[:0], 0
	}
	for {
		chunk, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		n := min(len(chunk), MaxLine-len(text))
		text = append(text, chunk[:n]...)
		cut += int64(len(chunk) - n)
		if err == nil || (!full && (len(text) > 0 || cut > 0)) {
			end()
		}
		if err != nil && !full {
			if dropped > 0 {
				s.Dropped(dropped)
			}
			return
		}
	}
}

// trimLine drops a carriage return from a whole line's end, and from a cut
// one the start of a character split by the cut, adding it to cut.
func trimLine(text []byte, cut int64) ([]byte, int64) {
	if cut == 0 {
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
		return text, 0
	}
	for i := len(text) - 1; i >= 0 && i >= len(text)-utf8.UTFMax; i-- {
		if utf8.RuneStart(text[i]) {
			if !utf8.FullRune(text[i:]) {
				cut += int64(len(text) - i)
				text = text[:i]
			}
			break
		}
	}
	return text, cut
}
