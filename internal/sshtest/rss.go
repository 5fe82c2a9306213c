package sshtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// PeakRSS is the peak resident set size of process pid in bytes (VmHWM
// from /proc). The test is skipped where /proc does not tell.
func PeakRSS(t testing.TB, pid int) int64 { return procStatus(t, pid, "VmHWM:") }

func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc status for %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s in /proc/%d/status: %v", field, pid, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// raceRSS is how much more memory a process built with the race detector
// may take: its shadow memory multiplies what the program holds (seen: a
// 52 MiB peak became 154 MiB). Under it a bound still tells memory that
// stays bounded from memory that grows with the input, though loosely.
const raceRSS = 4

// CheckPeakRSS fails the test when process pid's peak RSS is over bound
// (raceRSS × bound under the race detector) and returns the peak.
func CheckPeakRSS(t testing.TB, pid int, bound int64) int64 {
	t.Helper()
	peak := PeakRSS(t, pid)
	if RaceEnabled {
		bound *= raceRSS
	}
	t.Logf("peak RSS %.1f MiB (bound %d MiB%s)", float64(peak)/(1<<20), bound>>20, map[bool]string{true: ", race build", false: ""}[RaceEnabled])
	if peak > bound {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB", peak>>20, bound>>20)
	}
	return peak
}
