package bridge

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
)

// The remote's stderr reaches Stderr prefixed, cut and rate-bounded, in
// the format the host's log has always had.
func TestCopyStderr(t *testing.T) {
	long := strings.Repeat("x", stderrlines.MaxLine)
	for _, c := range []struct {
		name, in, want string
	}{
		{"lines", "starting up\nready", "m2m-ssh: remote: starting up\nm2m-ssh: remote: ready\n"},
		{"cut", long + "abc\n", "m2m-ssh: remote: " + long + " [cut: 3 more bytes]\n"},
		{
			"flood",
			strings.Repeat("e\n", stderrlines.Burst+7),
			strings.Repeat("m2m-ssh: remote: e\n", stderrlines.Burst) +
				fmt.Sprintf("m2m-ssh: warning: 7 lines of the remote's stderr dropped: more than %d a second\n", stderrlines.Rate),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			stopped := time.Now()
			stderrlines.Clock = func() time.Time { return stopped }
			defer func() { stderrlines.Clock = time.Now }()
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
		chunk := strings.Repeat("x", 32<<10)
		for range 1024 {
			io.WriteString(w, chunk)
		}
		io.WriteString(w, "\nconnect: no route\n")
		for range 32 {
			io.WriteString(w, chunk)
		}
	}()
	var log bytes.Buffer
	pc := &proxyConn{}
	pc.logStderr(r, "gw", slog.New(slog.NewTextHandler(&log, nil)))
	want := strings.Repeat("x", stderrlines.MaxLine) + fmt.Sprintf(" [cut: %d more bytes]", 1<<20-stderrlines.MaxLine)
	if pc.lastLine != want {
		t.Fatalf("last line %d bytes %.80q..., want %d", len(pc.lastLine), pc.lastLine, len(want))
	}
	if !strings.Contains(log.String(), "ProxyCommand: connect: no route") || log.Len() > 4*stderrlines.MaxLine+1024 {
		t.Fatalf("log (%d bytes) %.400q", log.Len(), log.String())
	}
}
