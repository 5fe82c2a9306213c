//go:build unix

package regularfile

import "syscall"

// openFlags: O_NONBLOCK so that opening a named pipe does not wait for a
// writer, O_NOCTTY so that opening a terminal does not make it ours.
// Regular files ignore both.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOCTTY
