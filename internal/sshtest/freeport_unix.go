//go:build unix

package sshtest

import (
	"syscall"
	"testing"
)

// FreePort returns a port on 127.0.0.1 that nothing listens on, and that
// nothing else can take until the test ends: a socket bound to it, never
// listening, holds it, so a connection to it is refused. A port found
// free and then let go could be taken by an sshd another test starts
// meanwhile (in this process or in another package's test binary running
// beside it), and a test that expects "connection refused" would meet a
// server. The socket does not set SO_REUSEADDR: no listener can share the
// port.
func FreePort(t testing.TB) int {
	t.Helper()
	// Under ForkLock, as the os package opens descriptors where
	// SOCK_CLOEXEC is missing: a program a test starts must not inherit
	// the socket and hold the port past the test.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatalf("a socket to hold a free port: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind a free port on 127.0.0.1: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatalf("the free port's name: %v", err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
