//go:build unix

package transport

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// Closing the session ends the ProxyCommand, and what the dial opened.
func TestProxyCommandEndsWithSession(t *testing.T) {
	sshtest.LookPath(t, "nc")
	l := newLab(t)
	d := l.dialer(t, "target-nc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, life, err := d.dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.pidNC)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("nc (pid %d) is not running during the session: %v", pid, err)
	}
	c.Close()
	released := func() bool {
		life.mu.Lock()
		defer life.mu.Unlock()
		return life.closed && syscall.Kill(pid, 0) != nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for !released() {
		if time.Now().After(deadline) {
			t.Fatalf("nc (pid %d) or the dial's other resources outlived the session", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling a process table: nothing to wait on
	}
}
