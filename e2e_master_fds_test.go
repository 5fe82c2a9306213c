//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/master"
)

// A master's ProxyCommand, the one program it starts on this host,
// inherits neither the spec nor the readiness pipe from the starter: a
// readiness pipe held open by it keeps the starter from seeing the end of
// the master's "up", so the starter waits readyWait and kills the master.
func TestMasterProxyCommandInheritsNoDescriptors(t *testing.T) {
	s := newSharing(t, "yes")
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	fds := filepath.Join(s.w.dir, "proxy-fds")
	proxy := "ProxyCommand=sh -c 'ls /proc/$$/fd > " + fds + "; exec nc %h %p'"
	cs, err := connect(t, ctx, s.command(t, "-o", proxy))
	if err != nil {
		t.Fatalf("connect through a master with a ProxyCommand: %v\nthe master's log:\n%s", err, s.masterLog(t))
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	b, err := os.ReadFile(fds)
	if err != nil {
		t.Fatal(err)
	}
	// The shell keeps descriptors of its own (10 and up); 3 and 4 are the
	// master's spec and readiness pipes when they leak.
	got := strings.Fields(string(b))
	for _, fd := range []int{master.SpecFD, master.ReadyFD} {
		if slices.Contains(got, strconv.Itoa(fd)) {
			t.Errorf("the master's ProxyCommand inherited descriptor %d (open: %q)", fd, got)
		}
	}
}
