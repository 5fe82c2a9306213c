//go:build race

package sshtest

// RaceEnabled reports whether the tests (and the binaries Build makes)
// run under the race detector, whose shadow memory multiplies a process's
// RSS: memory bounds hold for the plain build only.
const RaceEnabled = true
