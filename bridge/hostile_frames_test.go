package bridge

import (
	"fmt"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// errorFor checks that m is an error answer to id with code, whose message
// holds every word of want.
func errorFor(t *testing.T, m map[string]any, id any, code int, want ...string) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	if m["id"] != id || e == nil || e["code"] != float64(code) {
		t.Fatalf("answer = %.300v, want error %d for id %v", m, code, id)
	}
	for _, w := range want {
		if !strings.Contains(e["message"].(string), w) {
			t.Fatalf("message %q does not say %q", e["message"], w)
		}
	}
}

// A request from the remote whose id is not JSON never reaches the host,
// and nothing breaks when the link is then lost (it used to panic while
// building notifications/cancelled for it).
func TestRemoteBadIDThenLoss(t *testing.T) {
	h, remote, in := startPlayed(t, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`)
	recvLine(t, in)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":1x,"method":"roots/list"}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":5,"method":"roots/list"}`)
	if m := h.recv(); m["id"] != 5.0 || m["method"] != "roots/list" {
		t.Fatalf("first frame to the host = %v, want the request with id 5", m)
	}
	remote.cut()
	got := map[string]bool{}
	for range 2 {
		m := h.recv()
		switch {
		case m["method"] == methodCancelled:
			got[fmt.Sprint(m["params"].(map[string]any)["requestId"])] = true
		default:
			errorFor(t, m, 1.0, CodeConnectionLost, "lost")
			got["answer"] = true
		}
	}
	if !got["5"] || !got["answer"] || len(got) != 2 {
		t.Fatalf("after the loss the host got %v, want the error for 1 and the cancellation of 5", got)
	}
	h.in.Close()
	if r := h.wait(); r.code != ExitStatus {
		t.Fatalf("Run = %d, %v", r.code, r.err)
	}
}

func TestRemoteNotJSON(t *testing.T) {
	h, remote, in := startPlayed(t, nil)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call"}`)
	recvLine(t, in)
	recvLine(t, in)
	// A response with a readable id: its request gets an error.
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":1,"result":nope}}}`)
	errorFor(t, h.recv(), 1.0, CodeInternalError, "not JSON", "hint")
	// One whose id is not JSON is dropped; the next frame comes through.
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":Infinity,"result":{}}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":1,"result":{"late":true}}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":2,"result":{}}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":2,"result":{"again":true}}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","method":"notifications/message","params":{}}`)
	// Late and second answers are not passed on: each request has one.
	if m := h.recv(); m["id"] != 2.0 || fmt.Sprint(m["result"]) != "map[]" {
		t.Fatalf("answer = %v, want the result for 2", m)
	}
	if m := h.recv(); m["method"] != "notifications/message" {
		t.Fatalf("frame = %v, want the notification", m)
	}
}

func TestFrameLimitFromRemote(t *testing.T) {
	h, remote, in := startPlayed(t, func(b *Bridge) { b.MaxFrame = 64 << 10 })
	big := strings.Repeat("x", 1<<20)
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`)
	recvLine(t, in)
	fmt.Fprintf(remote.stdout, `{"jsonrpc":"2.0","id":1,"result":{"text":%q}}`+"\n", big)
	errorFor(t, h.recv(), 1.0, CodeInternalError, "64KiB", "--max-frame")
	// A request from the server over the limit is answered to the server.
	fmt.Fprintf(remote.stdout, `{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"text":%q}}`+"\n", big)
	m := recvFrame(t, in)
	errorFor(t, m, "s1", CodeInvalidRequest, "64KiB", "--max-frame")
	// The session goes on.
	h.send(`{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	recvLine(t, in)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":2,"result":{}}`)
	if m := h.recv(); m["id"] != 2.0 || m["result"] == nil {
		t.Fatalf("answer = %v, want the result for 2", m)
	}
}

func TestFrameLimitFromHost(t *testing.T) {
	h, remote, in := startPlayed(t, func(b *Bridge) { b.MaxFrame = 64 << 10 })
	big := strings.Repeat("y", 1<<20)
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"text":%q}}`, big))
	errorFor(t, h.recv(), 3.0, CodeInvalidRequest, "64KiB", "--max-frame", "not sent")
	// The host's answer to a request of the server's, over the limit,
	// reaches the server as an error.
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":"r1","method":"roots/list"}`)
	if m := h.recv(); m["id"] != "r1" {
		t.Fatalf("frame = %v, want the server's request", m)
	}
	h.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":"r1","result":{"roots":[{"uri":%q}]}}`, big))
	m := recvFrame(t, in)
	errorFor(t, m, "r1", CodeInternalError, "--max-frame")
	h.send(`{"jsonrpc":"2.0","id":4,"method":"ping"}`)
	if l := recvLine(t, in); !strings.Contains(l, `"id":4`) {
		t.Fatalf("the remote got %.100q, want request 4", l)
	}
}

// Past maxServerRequests waiting for the host, the server's requests are
// answered by the bridge and not passed on; the warning comes once.
func TestServerRequestsBound(t *testing.T) {
	var log sshtest.Buffer
	h, remote, in := startPlayed(t, func(b *Bridge) { b.Logger = newTestLogger(&log) })
	const extra = 10
	go func() {
		for i := range maxServerRequests + extra {
			fmt.Fprintf(remote.stdout, `{"jsonrpc":"2.0","id":%d,"method":"roots/list"}`+"\n", i)
		}
		fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","method":"notifications/message"}`)
	}()
	for i := range maxServerRequests {
		if m := h.recv(); m["id"] != float64(i) {
			t.Fatalf("frame %d = %v", i, m)
		}
	}
	if m := h.recv(); m["method"] != "notifications/message" {
		t.Fatalf("frame after %d requests = %v, want the notification: the rest are not passed on", maxServerRequests, m)
	}
	for i := range extra {
		m := recvFrame(t, in)
		errorFor(t, m, float64(maxServerRequests+i), CodeUnavailable, "wait for the host")
	}
	// Once the host answers one, there is room again.
	h.send(`{"jsonrpc":"2.0","id":0,"result":{"roots":[]}}`)
	recvLine(t, in)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":"new","method":"roots/list"}`)
	if m := h.recv(); m["id"] != "new" {
		t.Fatalf("frame = %v, want the new request", m)
	}
	if n := strings.Count(log.String(), "too many requests waiting"); n != 1 {
		t.Fatalf("the warning came %d times, want once:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), fmt.Sprintf("refused=%d", extra)) {
		t.Fatalf("the log does not count the refused requests:\n%s", log.String())
	}
}

// A server that spells an echoed id its own way (Python's json.dumps
// writes "é" as "\u00e9"; some write 1 as 1.0) still answers its request:
// the books key ids by value, so the answer reaches the host and the
// request is not answered again when the link is lost.
func TestRemoteRespellsIDs(t *testing.T) {
	h, remote, in := startPlayed(t, nil)
	h.send(`{"jsonrpc":"2.0","id":"é","method":"tools/call"}`)
	h.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call"}`)
	h.send(`{"jsonrpc":"2.0","id":8,"method":"tools/call"}`)
	for range 3 {
		recvLine(t, in)
	}
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":"\u00e9","result":{"n":1}}`)
	fmt.Fprintln(remote.stdout, `{"jsonrpc":"2.0","id":7.0,"result":{"n":2}}`)
	if m := h.recv(); m["id"] != "é" || m["result"] == nil {
		t.Fatalf("answer = %v, want the result for \"é\"", m)
	}
	if m := h.recv(); m["id"] != 7.0 || m["result"] == nil {
		t.Fatalf("answer = %v, want the result for 7", m)
	}
	remote.cut()
	// Only 8 was still in flight.
	errorFor(t, h.recv(), 8.0, CodeConnectionLost, "lost")
	h.in.Close()
	if r := h.wait(); r.code != ExitStatus {
		t.Fatalf("Run = %d, %v", r.code, r.err)
	}
}
