//go:build unix

package main

import (
	"testing"
	"time"
)

// hostile is the args that run the hostile server in mode behind buildbox.
func (w *world) hostile(mode string, args ...string) []string {
	cmd := bins.hostile + " " + mode
	for _, a := range args {
		cmd += " " + a
	}
	return []string{"buildbox", "--", cmd}
}

// The baseline every hostile test starts from: the polite mode works
// through the raw host.
func TestHostilePolite(t *testing.T) {
	w := newWorld(t)
	h := startRaw(t, w.command(w.hostile("polite")...))
	h.initialize()
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if m := h.recv(10 * time.Second); m["id"] != float64(2) || m["result"] == nil {
		t.Fatalf("tools/list answered %v", m)
	}
}
