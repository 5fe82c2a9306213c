package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

func readAll(t *testing.T, r io.Reader) []string {
	t.Helper()
	fr := NewFrameReader(r)
	var frames []string
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, string(f))
	}
}

func TestFrameReader(t *testing.T) {
	big := strings.Repeat("x", 3*frameBufferSize+17)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"one", "{}\n", []string{"{}\n"}},
		{"two", "{\"a\":1}\n{\"b\":2}\n", []string{"{\"a\":1}\n", "{\"b\":2}\n"}},
		{"crlf", "{}\r\n[]\r\n", []string{"{}\n", "[]\n"}},
		{"blank lines skipped", "\n  \n{}\n\r\n\t\n[]\n", []string{"{}\n", "[]\n"}},
		{"last line without newline", "{}\n{\"x\":1}", []string{"{}\n", "{\"x\":1}\n"}},
		{"empty", "", nil},
		{"inner carriage return kept", "{\"a\":\r1}\n", []string{"{\"a\":\r1}\n"}},
		{"larger than the buffer", "\"" + big + "\"\n{}\n", []string{"\"" + big + "\"\n", "{}\n"}},
		{"larger than the buffer, unterminated", "\"" + big + "\"", []string{"\"" + big + "\"\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got := readAll(t, r)
				if len(got) != len(tt.want) {
					t.Fatalf("got %d frames, want %d", len(got), len(tt.want))
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("frame %d = %.60q, want %.60q", i, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestFrameReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("{}\n{\"cut\":"), iotest.ErrReader(boom))
	fr := NewFrameReader(r)
	if f, err := fr.Next(); err != nil || string(f) != "{}\n" {
		t.Fatalf("first frame = %q, %v", f, err)
	}
	// A frame cut off by an error is never returned.
	if f, err := fr.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next = %q, %v; want the read error", f, err)
	}
}

func TestAppendSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"plain"}`, `{"a":"plain"}`},
		{"{\"a\":\"x\u2028y\"}", `{"a":"x\u2028y"}`},
		{"{\"a\":\"\u2029\u0085\u2028\"}", `{"a":"\u2029\u0085\u2028"}`},
		{"{\"a\":\"é✓\u00c2\u20ac\"}", "{\"a\":\"é✓\u00c2\u20ac\"}"},
		{"\u2028\u2028\u0085", `\u2028\u2028\u0085`},
		// A raw CR is whitespace between tokens in valid JSON, and a
		// line break to str.splitlines().
		{"{\r\"a\":\r\"x\u2028\"\r}", "{ \"a\": \"x\\u2028\" }"},
		{"[1,\r2]", "[1, 2]"},
	}
	for _, tt := range tests {
		got := string(AppendSafe(nil, []byte(tt.in)))
		if got != tt.want {
			t.Errorf("AppendSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// What dst already holds is not touched.
	if got := string(AppendSafe([]byte("\r"), []byte("[\r]"))); got != "\r[ ]" {
		t.Errorf("AppendSafe with a prefix = %q", got)
	}
}

// The escaped frame must mean the same JSON as the raw one.
func TestAppendSafeSameJSON(t *testing.T) {
	raw, err := json.Marshal(map[string]string{"text": sshtest.Blob(10000)})
	if err != nil {
		t.Fatal(err)
	}
	// encoding/json escapes U+2028/9 itself; undo that to get raw ones.
	raw = bytes.ReplaceAll(raw, []byte(`\u2028`), []byte("\u2028"))
	raw = bytes.ReplaceAll(raw, []byte(`\u2029`), []byte("\u2029"))
	safe := AppendSafe(nil, raw)
	for _, sep := range []string{"\u2028", "\u2029", "\u0085"} {
		if bytes.Contains(safe, []byte(sep)) {
			t.Fatalf("escaped frame still holds %q", sep)
		}
	}
	var a, b map[string]string
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(safe, &b); err != nil {
		t.Fatal(err)
	}
	if a["text"] != b["text"] {
		t.Fatal("escaping changed the text")
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("{}\n[]\r\n\n{\"a\":\"\u2028\"}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		frames := readAll(t, bytes.NewReader(in))
		// Frames are the input's non-blank lines, in order, each
		// ending in exactly one newline.
		var want []string
		for _, line := range strings.Split(string(in), "\n") {
			line = strings.TrimSuffix(line, "\r")
			if strings.TrimSpace(line) != "" {
				want = append(want, line+"\n")
			}
		}
		if len(frames) != len(want) {
			t.Fatalf("got %d frames, want %d", len(frames), len(want))
		}
		for i := range frames {
			if frames[i] != want[i] {
				t.Fatalf("frame %d = %q, want %q", i, frames[i], want[i])
			}
		}
	})
}

// A large frame grows the buffer, which is kept while large frames keep
// coming and given back after a run of small ones.
func TestFrameReaderBufferSize(t *testing.T) {
	big := "\"" + strings.Repeat("b", 5*frameBufferSize) + "\"\n"
	var in strings.Builder
	in.WriteString(big)
	in.WriteString(big)
	for range shrinkAfter {
		in.WriteString("{}\n")
	}
	in.WriteString(big)
	fr := NewFrameReader(&chunkReader{data: []byte(in.String()), chunk: 32 << 10})
	next := func(want string) {
		t.Helper()
		f, err := fr.Next()
		if err != nil || string(f) != want {
			t.Fatalf("Next = %.20q (%d bytes), %v; want %.20q (%d bytes)", f, len(f), err, want, len(want))
		}
	}
	next(big)
	grown := len(fr.buf)
	if grown <= frameBufferSize {
		t.Fatalf("buffer is %d bytes after a frame of %d", grown, len(big))
	}
	next(big)
	if len(fr.buf) != grown {
		t.Fatalf("buffer went from %d to %d bytes between two large frames", grown, len(fr.buf))
	}
	for range shrinkAfter {
		next("{}\n")
	}
	if len(fr.buf) != frameBufferSize {
		t.Fatalf("buffer is %d bytes after %d small frames; want %d", len(fr.buf), shrinkAfter, frameBufferSize)
	}
	next(big)
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next at the end = %v, want EOF", err)
	}
}

// Once the buffer has grown, large frames cost no allocations.
func TestFrameReaderLargeFramesDoNotAllocate(t *testing.T) {
	frame := []byte("\"" + strings.Repeat("x", 3*frameBufferSize) + "\"\n")
	r := &repeatReader{frame: frame}
	fr := NewFrameReader(r)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if f, err := fr.Next(); err != nil || len(f) != len(frame) {
			t.Fatalf("Next = %d bytes, %v", len(f), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per large frame; want 0", allocs)
	}
}

// chunkReader hands out data in reads of at most chunk bytes, as an SSH
// channel does (one packet's payload at a time).
type chunkReader struct {
	data  []byte
	chunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// repeatReader returns frame over and over, in reads of at most 32 KiB as
// an SSH channel does.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 32<<10)], r.frame[r.off:])
	r.off = (r.off + n) % len(r.frame)
	return n, nil
}

// A source that keeps returning nothing ends the reader with an error
// rather than a busy loop.
func TestFrameReaderNoProgress(t *testing.T) {
	fr := NewFrameReader(emptyReader{})
	if _, err := fr.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestFrameReaderBuffered(t *testing.T) {
	cases := []struct {
		name, in string
		want     []bool // after each frame
	}{
		{"partial frame does not count", "{\"a\":1}\n{\"b\":2}\n{\"c\":", []bool{true, false}},
		// Next skips blank lines: a writer holding back its flush for
		// them would wait for the remote's next output.
		{"blank lines do not count", "{\"a\":1}\n\r\n \n{\"b\":2}\n\n\r\n", []bool{true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fr := NewFrameReader(&oneRead{s: c.in})
			if fr.Buffered() {
				t.Fatal("Buffered before any read")
			}
			for i, want := range c.want {
				if _, err := fr.Next(); err != nil {
					t.Fatal(err)
				}
				if got := fr.Buffered(); got != want {
					t.Fatalf("after frame %d: Buffered = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

// oneRead hands over its whole text in one Read, then blocks forever as
// a quiet peer would (the test fails by timing out if Next reads again).
type oneRead struct {
	s    string
	done bool
}

func (r *oneRead) Read(p []byte) (int, error) {
	if r.done {
		select {}
	}
	r.done = true
	return copy(p, r.s), nil
}
