package transport

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// recordTrace is a Trace that writes each event as one short line.
func recordTrace(events *[]string) *Trace {
	ok := func(err error) string {
		if err != nil {
			return "failed"
		}
		return "ok"
	}
	name := func(h Hop) string {
		if h.Via != "" {
			return h.Target.Alias + " via " + h.Via
		}
		return h.Target.Alias
	}
	return &Trace{
		Resolved: func(h Hop, addrs []string, err error, _ time.Duration) {
			*events = append(*events, fmt.Sprintf("resolved %s %s", name(h), ok(err)))
		},
		Connected: func(h Hop, _ string, err error, _ time.Duration) {
			*events = append(*events, fmt.Sprintf("connected %s %s", name(h), ok(err)))
		},
		Handshake: func(h Hop, hs Handshake, err error) {
			known := "unknown"
			if hs.Known != nil {
				known = "known"
			}
			if !strings.HasPrefix(hs.ServerVersion, "SSH-2.0-OpenSSH") {
				known += " (version " + hs.ServerVersion + ")"
			}
			*events = append(*events, fmt.Sprintf("handshake %s %s %s", name(h), ok(err), known))
		},
		Authenticated: func(h Hop, accepted agentauth.Offered, err error, _ time.Duration) {
			who := "nobody"
			if accepted.Fingerprint != "" {
				who = accepted.Type
			}
			*events = append(*events, fmt.Sprintf("authenticated %s %s %s", name(h), ok(err), who))
		},
	}
}

// The trace sees every step of every hop, in the order the dialer takes
// them, with the same verdicts as the dial itself.
func TestTrace(t *testing.T) {
	l := newLab(t)
	login := func(hop string) []string {
		return []string{
			"handshake " + hop + " ok known",
			"authenticated " + hop + " ok ssh-ed25519",
		}
	}
	direct := func(alias string) []string {
		return append([]string{"resolved " + alias + " ok", "connected " + alias + " ok"}, login(alias)...)
	}
	cat := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	cases := []struct {
		alias string
		want  []string
		fails bool
		needs string
	}{
		{alias: "target", want: direct("target")},
		{alias: "target-jump2", want: cat(direct("hop1"),
			[]string{"connected hop2 via hop1 ok"}, login("hop2 via hop1"),
			[]string{"connected target-jump2 via hop2 ok"}, login("target-jump2 via hop2"))},
		{alias: "target-nc", needs: "nc", want: cat([]string{"connected target-nc via ProxyCommand ok"}, login("target-nc via ProxyCommand"))},
		{alias: "target-jump-refused", fails: true, want: cat(direct("hop1"), []string{"connected target-jump-refused via hop1 failed"})},
		{alias: "target-proxy-fails", fails: true, want: []string{"connected target-proxy-fails via ProxyCommand ok", "handshake target-proxy-fails via ProxyCommand failed unknown (version )"}},
	}
	for _, c := range cases {
		t.Run(c.alias, func(t *testing.T) {
			if c.needs != "" {
				sshtest.LookPath(t, c.needs)
			}
			var events []string
			d := l.dialer(t, c.alias)
			d.Trace = recordTrace(&events)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			client, err := d.Dial(ctx)
			if client != nil {
				client.Close()
			}
			if (err != nil) != c.fails {
				t.Fatalf("Dial: %v; want failure %v", err, c.fails)
			}
			if strings.Join(events, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("trace:\n  %s\nwant:\n  %s", strings.Join(events, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

// A server that is not SSH is named by what it said.
func TestTraceNotSSH(t *testing.T) {
	l := newLab(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n"))
			c.Close()
		}
	}()
	var events []string
	d := l.dialer(t, "target", fmt.Sprintf("Port=%d", port(t, ln.Addr().String())), "ConnectTimeout=5")
	d.Trace = recordTrace(&events)
	if c, err := d.Dial(context.Background()); err == nil {
		c.Close()
		t.Fatal("Dial succeeded against a server that is not SSH")
	}
	want := "handshake target failed unknown (version HTTP/1.1 400 Bad Request)"
	if len(events) != 3 || events[2] != want {
		t.Fatalf("trace = %q, want its last event %q", events, want)
	}
}
