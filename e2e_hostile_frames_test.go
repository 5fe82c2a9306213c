//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// framesHost starts m2m-ssh with flags in front of the hostile server in
// mode, and does the handshake.
func framesHost(t *testing.T, flags []string, mode string, args ...string) (*world, *rawHost) {
	t.Helper()
	w := newWorld(t)
	h := startRaw(t, w.command(append(flags, w.hostile(mode, args...)...)...))
	h.initialize()
	return w, h
}

// answer returns the answer to id, skipping the server's requests to the
// host and notifications; every frame it reads must be JSON.
func (h *rawHost) answer(id any, within time.Duration) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for n := 0; n < 1<<20; n++ {
		m := h.recv(time.Until(deadline))
		if m["method"] == nil && m["id"] == id {
			return m
		}
	}
	h.t.Fatalf("no answer to %v", id)
	return nil
}

// wantError checks m is an error with code whose message holds want.
func wantError(t *testing.T, m map[string]any, code int, want ...string) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	if e == nil || e["code"] != float64(code) {
		t.Fatalf("answer = %.300v, want error %d", m, code)
	}
	for _, w := range want {
		if !strings.Contains(fmt.Sprint(e["message"]), w) {
			t.Fatalf("message %q does not say %q", e["message"], w)
		}
	}
}

// exit closes stdin and returns m2m-ssh's exit status, failing if it takes
// longer than within or writes a frame that is not JSON meanwhile.
func (h *rawHost) exit(within time.Duration) int {
	h.t.Helper()
	h.in.Close()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-h.out:
			if !ok {
				h.cmd.Wait()
				return h.cmd.ProcessState.ExitCode()
			}
			if m["corrupt"] != nil {
				h.t.Fatalf("m2m-ssh wrote a frame that is not JSON: %.100q", m["corrupt"])
			}
		case <-timer.C:
			h.t.Fatalf("m2m-ssh did not exit within %s of stdin closing", within)
		}
	}
}

// rssBound is the promise for a limit: 3 × the limit + 16 MiB.
func rssBound(limit int64) int64 { return 3*limit + 16<<20 }

func checkRSS(t *testing.T, h *rawHost, limit int64) {
	t.Helper()
	// The promise: 3 × the limit + 16 MiB.
	sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, rssBound(limit))
}

// A request to the host whose id is not JSON, then the server's exit: the
// host's request gets an error, the broken frame never reaches it, and
// m2m-ssh ends with the server's status (it used to panic: exit 2).
func TestHostileBadID(t *testing.T) {
	_, h := framesHost(t, []string{"--max-reconnects", "0"}, "bad-id")
	h.call(2, "echo", `{}`)
	wantError(t, h.answer(2.0, 10*time.Second), -32001, "lost")
	if code := h.exit(10 * time.Second); code != 1 {
		t.Fatalf("exit status %d, want the server's 1\n%s", code, h.stderr)
	}
}

func TestHostileNotJSON(t *testing.T) {
	t.Run("readable id", func(t *testing.T) {
		_, h := framesHost(t, nil, "not-json", "nope")
		h.call(2, "echo", `{}`)
		wantError(t, h.answer(2.0, 10*time.Second), -32603, "not JSON")
		h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
		if m := h.answer(3.0, 10*time.Second); m["result"] == nil {
			t.Fatalf("tools/list after it = %v", m)
		}
		if code := h.exit(10 * time.Second); code != 0 {
			t.Fatalf("exit status %d", code)
		}
	})
	t.Run("id Infinity", func(t *testing.T) {
		_, h := framesHost(t, []string{"--max-reconnects", "0"}, "not-json", "infinity")
		h.call(2, "echo", `{}`)
		wantError(t, h.answer(2.0, 10*time.Second), -32001)
		h.exit(10 * time.Second)
	})
}

// A 200 MiB line from the remote, with --max-frame 16MiB: the request it
// answers gets an error naming the limit, memory stays bounded, and the
// session goes on.
func TestHostileHugeLine(t *testing.T) {
	const limit = 16 << 20
	_, h := framesHost(t, []string{"--max-frame", "16MiB"}, "huge", "200")
	start := time.Now()
	h.call(2, "echo", `{}`)
	wantError(t, h.answer(2.0, 120*time.Second), -32603, "16MiB", "--max-frame")
	t.Logf("answered in %s", time.Since(start).Round(time.Millisecond))
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	if m := h.answer(3.0, 10*time.Second); m["result"] == nil {
		t.Fatalf("tools/list after it = %v", m)
	}
	checkRSS(t, h, limit)
	if code := h.exit(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

// 1 GiB without a newline, then the server's exit: memory stays bounded,
// and the request the frame would answer gets an error.
func TestHostileEndlessLine(t *testing.T) {
	const limit = 16 << 20
	_, h := framesHost(t, []string{"--max-frame", "16MiB", "--max-reconnects", "0"}, "endless", "1024")
	start := time.Now()
	h.call(2, "echo", `{}`)
	// Its head names the request it answers: that one gets the error.
	wantError(t, h.answer(2.0, 180*time.Second), -32603, "at least", "16MiB", "--max-frame")
	t.Logf("answered in %s", time.Since(start).Round(time.Millisecond))
	checkRSS(t, h, limit)
	h.exit(10 * time.Second)
}

// A 500 MiB request from the host, at the default limit: it is answered
// with an error and never sent, and memory stays bounded.
func TestHostileHostHugeFrame(t *testing.T) {
	const limit = 64 << 20
	_, h := framesHost(t, nil, "polite")
	start := time.Now()
	go func() {
		io.WriteString(h.in, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`)
		chunk := strings.Repeat("host ", 1<<18)
		for n := 0; n < 500<<20; n += len(chunk) {
			if _, err := io.WriteString(h.in, chunk); err != nil {
				return
			}
		}
		io.WriteString(h.in, "\"}}}\n")
	}()
	wantError(t, h.answer(2.0, 120*time.Second), -32600, "64MiB", "--max-frame")
	t.Logf("answered in %s", time.Since(start).Round(time.Millisecond))
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	if m := h.answer(3.0, 10*time.Second); m["result"] == nil {
		t.Fatalf("tools/list after it = %v", m)
	}
	checkRSS(t, h, limit)
	if code := h.exit(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

// 20000 requests to the host, never answered: at most 1024 reach it, the
// host's own request is answered, and memory stays small.
func TestHostileFloodRequests(t *testing.T) {
	_, h := framesHost(t, nil, "flood-requests", "20000")
	h.call(2, "echo", `{}`)
	deadline := time.Now().Add(60 * time.Second)
	asked := 0
	for {
		m := h.recv(time.Until(deadline))
		if m["method"] == "roots/list" {
			asked++
			continue
		}
		if m["id"] == 2.0 && m["result"] != nil {
			break
		}
		t.Fatalf("frame = %.200v", m)
	}
	if asked != 1024 {
		t.Fatalf("%d of the server's requests reached the host, want 1024", asked)
	}
	// Idle is about 15 MiB; 2 million requests on the books took 326 MiB.
	sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, 32<<20)
	if code := h.exit(10 * time.Second); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

// While the session is being restored, the host keeps sending frames just
// under the limit: the bridge holds a bounded backlog and stops reading,
// so memory stays within the promise, and every request is answered.
func TestHostileHostFloodWhileReconnecting(t *testing.T) {
	t.Parallel() // waits out the product's timers; shares nothing with the other tests
	sshtest.LookPath(t, "nc")
	const limit = 16 << 20
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	up := filepath.Join(w.dir, "network-up")
	if err := os.WriteFile(up, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := fmt.Sprintf("ProxyCommand=sh -c '[ -e %s ] || exit 1; exec nc %%h %%p'", up)
	// The session never comes back, so each frame the backlog holds
	// waits the whole --reconnect-timeout for its answer, one after the
	// other: short, so the frames take seconds, not half a minute.
	h := startRaw(t, w.command(w.viaRelay(t, relay, filepath.Join(w.dir, "testmcp.pid"),
		"-o", proxy, "--max-frame", "16MiB", "--reconnect-timeout", "1s")...))
	h.initialize()
	os.Remove(up)
	relay.Cut()

	const frames = 8
	text := strings.Repeat("x", limit-200)
	written := make(chan int, 1)
	go func() {
		n := 0
		defer func() { written <- n }()
		for ; n < frames; n++ {
			if _, err := fmt.Fprintf(h.in, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`+"\n", 100+n, text); err != nil {
				return
			}
		}
	}()
	// Every request is answered: as not sent while the session is away,
	// or as lost when it went out just before m2m-ssh saw the cut.
	for i := range frames {
		m := h.recv(60 * time.Second)
		e, _ := m["error"].(map[string]any)
		if e == nil || (e["code"] != float64(bridge.CodeUnavailable) && e["code"] != float64(bridge.CodeConnectionLost)) {
			t.Fatalf("answer %d = %.300v, want error %d or %d", i, m, bridge.CodeUnavailable, bridge.CodeConnectionLost)
		}
	}
	if n := <-written; n != frames {
		t.Fatalf("the host could write %d of %d frames", n, frames)
	}
	// The one-frame promise, and the backlog's maxQueued (4 MiB) that
	// waits for the session beside the frame being read.
	sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, rssBound(limit)+4<<20)
}
