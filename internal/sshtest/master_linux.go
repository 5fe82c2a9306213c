package sshtest

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// WaitExit fails the test unless the master's process ends within d.
func (m *Master) WaitExit(t testing.TB, d time.Duration) {
	t.Helper()
	WaitPidExit(t, m.Pid, d)
}

// WaitPidExit fails the test unless process pid ends within d. The process
// need not be the test's child (a master that ssh -f forked, a program
// sshd runs): it is watched through a pidfd, readable once it ends.
func WaitPidExit(t testing.TB, pid int, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return // gone already
	}
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("process %d is still running after %v", pid, d)
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll on a pidfd: %v", err)
		}
		if n > 0 {
			return
		}
	}
}
