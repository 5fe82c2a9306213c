//go:build unix

package sshtest

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A free port refuses connections, and stays free for the whole test: no
// listener, in this process or another, can take it meanwhile, as sshd
// would (it sets SO_REUSEADDR, as Go's listeners do).
func TestFreePortHeld(t *testing.T) {
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if c, err := net.DialTimeout("tcp", addr, 10*time.Second); err == nil {
		c.Close()
		t.Fatalf("connected to the free port %d", port)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial the free port: %v, want connection refused", err)
	}
	for _, a := range []string{addr, net.JoinHostPort("0.0.0.0", strconv.Itoa(port))} {
		if l, err := net.Listen("tcp", a); err == nil {
			l.Close()
			t.Fatalf("a listener took %s while the test holds the port", a)
		}
	}
	if other := FreePort(t); other == port {
		t.Fatalf("two free ports of one test are both %d", port)
	}
}
