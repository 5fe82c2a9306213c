package sshtest

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// WaitExit fails the test unless the master's process ends within d. The
// master is not the test's child (ssh -f forked it), so it is watched
// through a pidfd, which becomes readable when the process ends.
func (m *Master) WaitExit(t testing.TB, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(m.Pid, 0)
	if err == unix.ESRCH {
		return // gone already
	}
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", m.Pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("the master (pid %d) is still running after %v", m.Pid, d)
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll on the master's pidfd: %v", err)
		}
		if n > 0 {
			return
		}
	}
}
