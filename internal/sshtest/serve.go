package sshtest

import (
	"io"
	"net"
	"testing"
)

// Serve listens on network and address (127.0.0.1:0, a socket path) and
// gives each connection to handle on a goroutine of its own, closing it
// when handle returns. The listener is closed when the test ends. It
// returns the address listened on.
func Serve(t testing.TB, network, address string, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// Echo is a handler for Serve that sends back what it receives.
func Echo(c net.Conn) { io.Copy(c, c) }
