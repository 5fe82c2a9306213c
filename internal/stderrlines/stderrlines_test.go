package stderrlines

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// clockedReader returns its lines one Read at a time, moving the fake
// clock by each line's step before it: the rate is seen as it streams.
type clockedReader struct {
	lines []timedLine
	now   *time.Time
}

type timedLine struct {
	after time.Duration
	text  string
}

func (r *clockedReader) Read(p []byte) (int, error) {
	if len(r.lines) == 0 {
		return 0, io.EOF
	}
	l := &r.lines[0]
	if l.after != 0 {
		*r.now = r.now.Add(l.after)
		l.after = 0
	}
	n := copy(p, l.text)
	if l.text = l.text[n:]; l.text == "" {
		r.lines = r.lines[1:]
	}
	return n, nil
}

func repeatLines(n int, text string) []timedLine {
	ls := make([]timedLine, n)
	for i := range ls {
		ls[i] = timedLine{text: text}
	}
	return ls
}

func TestStderrLines(t *testing.T) {
	long := strings.Repeat("x", MaxLine)
	for _, c := range []struct {
		name string
		in   []timedLine
		want []string // "line" or "line [cut N]" or "dropped N"
	}{
		{"lines", []timedLine{{text: "one\ntwo\n\nthree"}}, []string{"one", "two", "", "three"}},
		{"line ends", []timedLine{{text: "dos\r\nunix\n"}}, []string{"dos", "unix"}},
		{"at the bound", []timedLine{{text: long + "\n"}}, []string{long}},
		{"over the bound", []timedLine{{text: long + "yz\nnext\n"}}, []string{long + " [cut 2]", "next"}},
		{"cut without a newline", []timedLine{{text: long + strings.Repeat("y", 5000)}}, []string{long + " [cut 5000]"}},
		{"cut in a character", []timedLine{{text: long[1:] + "é\n"}}, []string{long[1:] + " [cut 2]"}},
		{
			"over the rate, noted at the end",
			repeatLines(Burst+50, "flood\n"),
			append(repeat(Burst, "flood"), "dropped 50"),
		},
		{
			"over the rate, noted when it allows again",
			append(repeatLines(Burst+50, "flood\n"), timedLine{after: time.Second, text: "calm\n"}),
			append(repeat(Burst, "flood"), "dropped 50", "calm"),
		},
		{
			"within the rate",
			func() []timedLine {
				var ls []timedLine
				for range 3 * Burst {
					ls = append(ls, timedLine{after: time.Second / Rate, text: "steady\n"})
				}
				return ls
			}(),
			repeat(3*Burst, "steady"),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1e9, 0)
			var got []string
			Lines{
				Line: func(text []byte, cut int64) {
					if cut > 0 {
						got = append(got, fmt.Sprintf("%s [cut %d]", text, cut))
					} else {
						got = append(got, string(text))
					}
				},
				Dropped: func(n int) { got = append(got, fmt.Sprintf("dropped %d", n)) },
				Now:     func() time.Time { return now },
			}.Read(&clockedReader{lines: c.in, now: &now})
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got %d lines %.300q, want %d %.300q", len(got), got, len(c.want), c.want)
			}
		})
	}
}

func repeat(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// A line far over the bound is skipped as it streams: the memory it takes
// is the bound's, not the line's.
func TestStderrLinesStreamsALongLine(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var cut int64
	Lines{
		Line:    func(text []byte, c int64) { cut = c },
		Dropped: func(int) {},
	}.Read(sshtest.EndlessLine(size))
	runtime.ReadMemStats(&after)
	if cut != size-MaxLine {
		t.Fatalf("cut %d bytes, want %d", cut, size-MaxLine)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("reading a %d-byte line allocated %d bytes", size, alloc)
	}
}

// chunked reads data at most n bytes at a time.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

// FuzzStderrLines checks Lines against the plain rule: split at
// newlines; a line within the bound loses a trailing CR, a longer one
// keeps its first MaxLine bytes less a split character, and counts
// the rest as cut. Within the rate, every line arrives, however the input
// is chunked.
func FuzzStderrLines(f *testing.F) {
	f.Add([]byte("one\r\ntwo\n\nthree"), 7)
	f.Add(append(bytes.Repeat([]byte("é"), MaxLine), "\r\nx"...), 1)
	f.Add(append(bytes.Repeat([]byte("a"), MaxLine), "\r\n"...), 4096)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 || chunk > 1<<16 {
			chunk = 1 + chunk&0xfff
		}
		var want []string
		lines := bytes.Split(data, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for _, l := range lines {
			if len(l) <= MaxLine {
				want = append(want, fmt.Sprintf("%q 0", bytes.TrimSuffix(l, []byte("\r"))))
				continue
			}
			text, cut := trimLine(l[:MaxLine], int64(len(l)-MaxLine))
			want = append(want, fmt.Sprintf("%q %d", text, cut))
		}
		now := time.Unix(1e9, 0)
		var got []string
		Lines{
			Line: func(text []byte, cut int64) {
				if len(text) > MaxLine || bytes.IndexByte(text, '\n') >= 0 {
					t.Fatalf("line %q over the bound or with a newline", text)
				}
				got = append(got, fmt.Sprintf("%q %d", text, cut))
			},
			Dropped: func(n int) { t.Fatalf("%d lines dropped within the rate", n) },
			Now: func() time.Time {
				now = now.Add(time.Second)
				return now
			},
		}.Read(&chunked{data: data, n: chunk})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("got %.500q\nwant %.500q", got, want)
		}
	})
}
