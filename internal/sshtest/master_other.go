//go:build !linux

package sshtest

import (
	"testing"
	"time"
)

// WaitExit fails the test unless the master's process ends within d; only
// Linux can watch a process that is not the test's child.
func (m *Master) WaitExit(t testing.TB, d time.Duration) {
	t.Helper()
	t.Skip("waiting for a process that is not our child needs Linux's pidfd")
}

// WaitPidExit fails the test unless process pid ends within d; Linux only.
func WaitPidExit(t testing.TB, pid int, d time.Duration) {
	t.Helper()
	t.Skip("waiting for a process that is not our child needs Linux's pidfd")
}
