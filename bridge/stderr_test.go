package bridge

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
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
	long := strings.Repeat("x", maxStderrLine)
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
			repeatLines(stderrBurst+50, "flood\n"),
			append(repeat(stderrBurst, "flood"), "dropped 50"),
		},
		{
			"over the rate, noted when it allows again",
			append(repeatLines(stderrBurst+50, "flood\n"), timedLine{after: time.Second, text: "calm\n"}),
			append(repeat(stderrBurst, "flood"), "dropped 50", "calm"),
		},
		{
			"within the rate",
			func() []timedLine {
				var ls []timedLine
				for range 3 * stderrBurst {
					ls = append(ls, timedLine{after: time.Second / stderrRate, text: "steady\n"})
				}
				return ls
			}(),
			repeat(3*stderrBurst, "steady"),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(1e9, 0)
			var got []string
			stderrLines{
				line: func(text []byte, cut int64) {
					if cut > 0 {
						got = append(got, fmt.Sprintf("%s [cut %d]", text, cut))
					} else {
						got = append(got, string(text))
					}
				},
				dropped: func(n int) { got = append(got, fmt.Sprintf("dropped %d", n)) },
				now:     func() time.Time { return now },
			}.read(&clockedReader{lines: c.in, now: &now})
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
	stderrLines{
		line:    func(text []byte, c int64) { cut = c },
		dropped: func(int) {},
	}.read(&endless{n: size})
	runtime.ReadMemStats(&after)
	if cut != size-maxStderrLine {
		t.Fatalf("cut %d bytes, want %d", cut, size-maxStderrLine)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("reading a %d-byte line allocated %d bytes", size, alloc)
	}
}

// The remote's stderr reaches Stderr prefixed, cut and rate-bounded, in
// the format the host's log has always had.
func TestCopyStderr(t *testing.T) {
	long := strings.Repeat("x", maxStderrLine)
	for _, c := range []struct {
		name, in, want string
	}{
		{"lines", "starting up\nready", "m2m-ssh: remote: starting up\nm2m-ssh: remote: ready\n"},
		{"cut", long + "abc\n", "m2m-ssh: remote: " + long + " [cut: 3 more bytes]\n"},
		{
			"flood",
			strings.Repeat("e\n", stderrBurst+7),
			strings.Repeat("m2m-ssh: remote: e\n", stderrBurst) +
				fmt.Sprintf("m2m-ssh: warning: 7 lines of the remote's stderr dropped: more than %d a second\n", stderrRate),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			stopped := time.Now()
			stderrClock = func() time.Time { return stopped }
			defer func() { stderrClock = time.Now }()
			var out bytes.Buffer
			(&Bridge{Stderr: &out}).copyStderr(strings.NewReader(c.in))
			if out.String() != c.want {
				t.Fatalf("Stderr = %.200q, want %.200q", out.String(), c.want)
			}
		})
	}
}

// A ProxyCommand's stderr is logged bounded, and the last line its errors
// report is bounded too.
func TestProxyStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Close()
		io.Copy(w, &endless{n: 32 << 20})
		io.WriteString(w, "\nconnect: no route\n")
		io.Copy(w, &endless{n: 1 << 20})
	}()
	var log bytes.Buffer
	pc := &proxyConn{}
	pc.logStderr(r, "gw", slog.New(slog.NewTextHandler(&log, nil)))
	want := strings.Repeat("x", maxStderrLine) + fmt.Sprintf(" [cut: %d more bytes]", 1<<20-maxStderrLine)
	if pc.lastLine != want {
		t.Fatalf("last line %d bytes %.80q..., want %d", len(pc.lastLine), pc.lastLine, len(want))
	}
	if !strings.Contains(log.String(), "ProxyCommand: connect: no route") || log.Len() > 4*maxStderrLine+1024 {
		t.Fatalf("log (%d bytes) %.400q", log.Len(), log.String())
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

// FuzzStderrLines checks stderrLines against the plain rule: split at
// newlines; a line within the bound loses a trailing CR, a longer one
// keeps its first maxStderrLine bytes less a split character, and counts
// the rest as cut. Within the rate, every line arrives, however the input
// is chunked.
func FuzzStderrLines(f *testing.F) {
	f.Add([]byte("one\r\ntwo\n\nthree"), 7)
	f.Add(append(bytes.Repeat([]byte("é"), maxStderrLine), "\r\nx"...), 1)
	f.Add(append(bytes.Repeat([]byte("a"), maxStderrLine), "\r\n"...), 4096)
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
			if len(l) <= maxStderrLine {
				want = append(want, fmt.Sprintf("%q 0", bytes.TrimSuffix(l, []byte("\r"))))
				continue
			}
			text, cut := trimLine(l[:maxStderrLine], int64(len(l)-maxStderrLine))
			want = append(want, fmt.Sprintf("%q %d", text, cut))
		}
		now := time.Unix(1e9, 0)
		var got []string
		stderrLines{
			line: func(text []byte, cut int64) {
				if len(text) > maxStderrLine || bytes.IndexByte(text, '\n') >= 0 {
					t.Fatalf("line %q over the bound or with a newline", text)
				}
				got = append(got, fmt.Sprintf("%q %d", text, cut))
			},
			dropped: func(n int) { t.Fatalf("%d lines dropped within the rate", n) },
			now: func() time.Time {
				now = now.Add(time.Second)
				return now
			},
		}.read(&chunked{data: data, n: chunk})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("got %.500q\nwant %.500q", got, want)
		}
	})
}

// endless is n bytes that are not a newline, then EOF.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.n, 32<<10)]
	for i := range p {
		p[i] = 'x'
	}
	e.n -= int64(len(p))
	return len(p), nil
}
