package transport

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
)

func TestParseJumpHost(t *testing.T) {
	cases := []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{in: "bastion", host: "bastion"},
		{in: "me@bastion:2222", user: "me", host: "bastion", port: 2222},
		{in: "me@[127.0.0.1]:22", user: "me", host: "127.0.0.1", port: 22},
		{in: "[::1]:2200", host: "::1", port: 2200},
		{in: "a@b@host", user: "a@b", host: "host"},
		{in: "host:0", bad: true},
		{in: "host:x", bad: true},
		{in: "[::1", bad: true},
		{in: "me@", bad: true},
	}
	for _, c := range cases {
		u, h, p, err := parseJumpHost(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: parsed as %q %q %d", c.in, u, h, p)
			}
			continue
		}
		if err != nil || u != c.user || h != c.host || p != c.port {
			t.Errorf("%q: got %q %q %d %v", c.in, u, h, p, err)
		}
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
