package jsonrpc

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// next is one result of Next: a frame, or the size of one over the limit.
type next struct {
	frame string
	over  int64 // size of a frame over the limit, or 0
	head  string
}

func readLimited(t *testing.T, fr *FrameReader) []next {
	t.Helper()
	var got []next
	for range 1 << 20 {
		f, err := fr.Next()
		var tl *FrameTooLargeError
		switch {
		case errors.As(err, &tl):
			got = append(got, next{over: tl.Size, head: string(tl.Head)})
		case errors.Is(err, io.EOF):
			return got
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, next{frame: string(f)})
		}
	}
	t.Fatal("no end")
	return nil
}

func TestFrameReaderLimit(t *testing.T) {
	big := `{"id":7,"result":"` + strings.Repeat("x", 3*frameBufferSize) + `"}`
	cases := []struct {
		name string
		max  int
		in   string
		want []next
	}{
		{"at the limit", 10, "0123456789\n", []next{{frame: "0123456789\n"}}},
		{"over it", 10, "a\n0123456789X\nb\n", []next{{frame: "a\n"}, {over: 11, head: "0123456789X"}, {frame: "b\n"}}},
		{"over it, cut", 10, "a\n0123456789XYZ", []next{{frame: "a\n"}, {over: 13, head: "0123456789XYZ"}}},
		{"large, after the buffer grew", 2 * frameBufferSize, "{}\n" + big + "\n{}\n",
			[]next{{frame: "{}\n"}, {over: int64(len(big)), head: big[:frameHead]}, {frame: "{}\n"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fr := NewFrameReader(&chunkReader{data: []byte(c.in), chunk: 32 << 10})
			fr.Max = c.max
			got := readLimited(t, fr)
			if len(got) != len(c.want) {
				t.Fatalf("got %d results, want %d", len(got), len(c.want))
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("result %d = %.40q over=%d head=%.40q; want %.40q over=%d head=%.40q", i,
						got[i].frame, got[i].over, got[i].head, c.want[i].frame, c.want[i].over, c.want[i].head)
				}
			}
			if len(fr.buf) > max(frameBufferSize, c.max+1) {
				t.Fatalf("buffer is %d bytes after a frame over a limit of %d", len(fr.buf), c.max)
			}
		})
	}
}

// A line without end costs no more memory than the limit.
func TestFrameReaderEndlessLine(t *testing.T) {
	const size, limit = 256 << 20, 1 << 20
	fr := NewFrameReader(sshtest.EndlessLine(size))
	fr.Max = limit
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := fr.Next()
	runtime.ReadMemStats(&after)
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Size != size || !tl.Cut || len(tl.Head) != frameHead {
		t.Fatalf("Next = %v, want a frame of %d bytes over the limit, cut", err, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
		t.Fatalf("reading an endless line allocated %d bytes; the limit is %d", alloc, limit)
	}
	if _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after it = %v, want EOF", err)
	}
}

// FuzzFrameReaderLimit: with a limit, the frames are the input's
// non-blank lines up to the limit, and each longer line is reported with
// its size and head, in order.
func FuzzFrameReaderLimit(f *testing.F) {
	f.Add([]byte("{}\n0123456789abcdef\n\n[]\r\nxx"), uint8(4), uint8(3))
	f.Add([]byte("\n\n"+strings.Repeat("y", 70)+"\r\n{}"), uint8(1), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, max, chunk uint8) {
		limit := int(max%64) + 1
		fr := NewFrameReader(&chunkReader{data: in, chunk: int(chunk%16) + 1})
		fr.Max = limit
		got := readLimited(t, fr)
		var want []next
		lines := bytes.Split(in, []byte("\n"))
		for _, line := range lines {
			if len(line) > limit {
				// The size counts the line as it came, a '\r'
				// before its newline included.
				want = append(want, next{over: int64(len(line)), head: string(line[:min(len(line), frameHead)])})
				continue
			}
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(bytes.TrimSpace(line)) != 0 {
				want = append(want, next{frame: string(line) + "\n"})
			}
		}
		if len(got) != len(want) {
			t.Fatalf("got %d results %+v, want %d %+v", len(got), got, len(want), want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("result %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// When a grown buffer is given up, the frame returned with it is moved to
// the new one: nothing holds the old buffer, whose memory can go back to
// the system at once.
func TestFrameReaderGivesBufferBack(t *testing.T) {
	big := "\"" + strings.Repeat("b", 2*growSlower) + "\"\n"
	in := big + strings.Repeat("{}\n", shrinkAfter+1)
	fr := NewFrameReader(&chunkReader{data: []byte(in), chunk: 32 << 10})
	if f, err := fr.Next(); err != nil || len(f) != len(big) {
		t.Fatalf("Next = %d bytes, %v", len(f), err)
	}
	for i := range shrinkAfter {
		f, err := fr.Next()
		if err != nil || string(f) != "{}\n" {
			t.Fatalf("Next = %q, %v", f, err)
		}
		if i == shrinkAfter-1 {
			if len(fr.buf) != frameBufferSize {
				t.Fatalf("buffer is %d bytes after %d small frames", len(fr.buf), shrinkAfter)
			}
			if start := &fr.buf[0]; &f[0] != start && !(uintptr(unsafe.Pointer(&f[0])) > uintptr(unsafe.Pointer(start)) && uintptr(unsafe.Pointer(&f[0])) < uintptr(unsafe.Pointer(start))+uintptr(len(fr.buf))) {
				t.Fatal("the frame returned with the shrink still points into the old buffer")
			}
		}
	}
}

// Release drops a grown buffer but keeps what is unread.
func TestFrameReaderRelease(t *testing.T) {
	big := strings.Repeat("b", 4*frameBufferSize)
	fr := NewFrameReader(strings.NewReader(big + "\n" + "next\n"))
	f, err := fr.Next()
	if err != nil || len(f) != len(big)+1 {
		t.Fatalf("Next = %d bytes, %v", len(f), err)
	}
	if len(fr.buf) <= frameBufferSize {
		t.Fatalf("the buffer did not grow (%d bytes): the test proves nothing", len(fr.buf))
	}
	fr.Release()
	if len(fr.buf) != frameBufferSize {
		t.Fatalf("after Release the buffer is %d bytes, want %d", len(fr.buf), frameBufferSize)
	}
	if f, err := fr.Next(); err != nil || string(f) != "next\n" {
		t.Fatalf("the frame after Release = %q, %v", f, err)
	}
}
