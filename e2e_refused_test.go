//go:build unix

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A session whose subsystem sshd refuses: m2m-ssh sends the host's first
// request right after the subsystem request, without waiting for sshd's
// answer, and the refusal still reaches the host, once for each request,
// with the hint, and m2m-ssh exits 255.
func TestEndToEndRefusedAfterFirstFrame(t *testing.T) {
	w := newWorld(t)
	h := startRaw(t, w.command("--subsystem", "nope", "buildbox"))
	h.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	first := h.recv(30 * time.Second)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	second := h.recv(30 * time.Second)
	h.in.Close()
	// Whatever else comes before stdout closes is a second answer.
	var rest []map[string]any
	deadline := time.After(30 * time.Second)
collect:
	for {
		select {
		case m, ok := <-h.out:
			if !ok {
				break collect
			}
			rest = append(rest, m)
		case <-deadline:
			t.Fatal("m2m-ssh kept stdout open 30 s after stdin closed")
		}
	}
	for i, m := range []map[string]any{first, second} {
		e, _ := m["error"].(map[string]any)
		msg := fmt.Sprint(e["message"])
		if m["id"] != float64(i+1) || e == nil || !strings.Contains(msg, "refused the subsystem nope request") || !strings.Contains(msg, "hint: add 'Subsystem nope") {
			t.Errorf("request %d was answered %v; want the refusal with its hint", i+1, m)
		}
	}
	if len(rest) > 0 {
		t.Errorf("more frames after the answers: %v", rest)
	}
	if err := h.cmd.Wait(); h.cmd.ProcessState.ExitCode() != 255 {
		t.Errorf("m2m-ssh exited with %v; want 255", err)
	}
}
