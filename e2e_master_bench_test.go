//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMasterMemory is a benchmark, not a check: the summed peak RSS of
// five m2m-ssh started at once for one host, each with its own connection,
// against five that share one master, the master included. The binary is
// m2m-ssh itself, built apart (the test binary carries the tests).
func TestMasterMemory(t *testing.T) {
	if os.Getenv("M2M_BENCH_MASTER") == "" {
		t.Skip("set M2M_BENCH_MASTER=1 to measure the memory of five sessions with and without a master")
	}
	bin, err := sshtest.Build(t.TempDir(), ".", "m2m-ssh")
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	blob := 1 << 20 // M2M_BENCH_MASTER_BLOB bytes instead, when set
	if b, err := strconv.Atoi(os.Getenv("M2M_BENCH_MASTER_BLOB")); err == nil {
		blob = b
	}
	t.Logf("each session calls blob with size %d", blob)
	for _, shared := range []bool{false, true} {
		s := newSharing(t, "yes")
		sharing := "ControlMaster=no"
		if shared {
			sharing = "ControlMaster=auto"
		}
		ctx, cancel := context.WithTimeout(context.Background(), masterBound)
		defer cancel()
		cmds := make([]*exec.Cmd, n)
		sessions := make([]*mcp.ClientSession, n)
		// Written once: the known_hosts file it writes is read by the
		// sessions already started.
		args := append([]string{"-F", s.w.config, "-o", sharing}, s.w.viaRelay(t, s.relay, filepath.Join(s.w.dir, "testmcp.pid"))...)
		var wg sync.WaitGroup
		for i := range cmds {
			cmds[i] = exec.Command(bin, args...)
			cmds[i].Env = []string{"HOME=" + s.w.dir, "PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + s.w.agent.Sock}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs, err := connect(t, ctx, cmds[i])
				if err != nil {
					t.Error(err)
					return
				}
				sessions[i] = cs
				// The same work in each: a result of blob bytes.
				if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "blob", Arguments: map[string]any{"size": blob}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		var clients, masterRSS, anon, pss int64
		pids := []int{}
		for _, c := range cmds {
			clients += sshtest.PeakRSS(t, c.Process.Pid)
			pids = append(pids, c.Process.Pid)
		}
		if shared {
			pid := s.masterPID(t)
			masterRSS = sshtest.PeakRSS(t, pid)
			pids = append(pids, pid)
		}
		for _, pid := range pids {
			anon += smaps(t, pid, "Anonymous:")
			pss += smaps(t, pid, "Pss:")
		}
		t.Logf("shared=%v: %d connections; peak RSS: clients %.1f MiB in all, master %.1f MiB, total %.1f MiB; now: Pss %.1f MiB, anonymous %.1f MiB",
			shared, s.relay.Accepted(), mib(clients), mib(masterRSS), mib(clients+masterRSS), mib(pss), mib(anon))
		for _, cs := range sessions {
			cs.Close()
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// smaps is a field of /proc/pid/smaps_rollup in bytes: Pss counts the
// pages processes share (the binary's text) once among them, where summed
// RSS counts them in each.
func smaps(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
