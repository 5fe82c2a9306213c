//go:build unix

package main

import (
	"os"
	"syscall"
)

// pollable returns f reopened in non-blocking mode when it is a pipe or a
// socket, as an MCP host's stdin and stdout are, so that reads and writes
// wait in the runtime's poller instead of holding an OS thread in a
// blocking system call that the scheduler must keep checking on. A
// terminal or a file is left as it is: its file description may be shared
// with the shell.
func pollable(f *os.File) *os.File {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return f
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK:
	default:
		return f
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return f
	}
	// NewFile sees the non-blocking flag and registers the descriptor
	// with the poller.
	return os.NewFile(uintptr(fd), f.Name())
}
