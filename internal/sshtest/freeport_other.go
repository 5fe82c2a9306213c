//go:build !unix

package sshtest

import "testing"

// FreePort returns a port on 127.0.0.1 that nothing listens on right now.
func FreePort(t testing.TB) int { return freePort(t) }
