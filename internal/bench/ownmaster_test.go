//go:build unix

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// ownPersist is the ControlPersist the benchmark's own masters get: long
// enough that no master ends between the sessions of one measurement, and
// short enough that one the test failed to end does not linger long.
const ownPersist = "60s"

// masterBound bounds asking a master for its pid, telling it to exit and
// waiting for it to go, on a loaded machine.
const masterBound = 30 * time.Second

// fiveClients is how many m2m-ssh the five-at-once measurement starts
// together: a host launching its configured servers for one build box.
const fiveClients = 5

// fiveBlob is the result each of the five serves before its memory is
// read, so that the figures include carrying a frame, not only starting.
const fiveBlob = 1 << 20

// ownMasterArgv is m2m-ssh for host that starts its own master at path when
// none listens there (ControlMaster auto) and rides it when one does.
func ownMasterArgv(w *world, server, path, host string) []string {
	return []string{w.bin["m2m-ssh"], "-F", w.config, "-o", "ControlMaster=auto", "-o", "ControlPersist=" + ownPersist, "-o", "ControlPath=" + path, host, "--", server}
}

// ownPath is a fresh ControlPath for one measurement, so that each finds
// no master and starts one.
func ownPath(w *world, what string, run int, host string) string {
	return filepath.Join(w.dir, fmt.Sprintf("%s%d-%s.sock", what, run, host))
}

// masterPID asks the master at path for its pid; 0 when none listens.
func masterPID(path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	c, err := mux.Dial(ctx, path)
	if errors.Is(err, mux.ErrNoMaster) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	pid, err := c.Check(ctx)
	return int(pid), err
}

// endMaster tells the master at path to exit (ssh -O exit's request) and
// waits, bounded, until its process is gone; a master that will not go is
// killed. It is also registered as a cleanup, so a failed test leaves no
// master behind either.
func endMaster(t *testing.T, path string, pid int) {
	t.Helper()
	if pid == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), masterBound)
	defer cancel()
	if c, err := mux.Dial(ctx, path); err == nil {
		if err := c.Exit(ctx); err != nil {
			t.Logf("the exit request to the master at %s: %v; killing %d", path, err, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		c.Close()
	} else if !errors.Is(err, mux.ErrNoMaster) {
		t.Logf("the master at %s: %v; killing %d", path, err, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	sshtest.WaitPidExit(t, pid, masterBound)
}

// watchMaster makes sure the master at path, once it has started, is
// ended at the end of the test even when the test fails before endMaster.
func watchMaster(t *testing.T, path string) {
	t.Cleanup(func() {
		pid, err := masterPID(path)
		if err == nil && pid != 0 {
			endMaster(t, path, pid)
		}
	})
}

// ownMasterRun measures one run of the two own-master rows on host: the
// m2m-ssh that starts the master, then one that rides it, then ends the
// master. Through the proxy it also counts each one's flights and the
// connections it made.
func ownMasterRun(t *testing.T, w *world, proxy *DelayProxy, first, later *latencyRow, server string, run int, host string) {
	path := ownPath(w, "own", run, host)
	watchMaster(t, path)
	type figure struct {
		d        time.Duration
		flights  int64
		accepted int64
	}
	measure := func(r *latencyRow) figure {
		proxy.Mark()
		accepted, flights := proxy.Accepted(), proxy.Flights()
		var spent int64
		d, err := startToInitialize(r.argv(host), r.env, func() { spent = proxy.Flights() - flights })
		if err != nil {
			t.Fatalf("%s on %s, run %d: %v", r.name, host, run+1, err)
		}
		return figure{d, spent, proxy.Accepted() - accepted}
	}
	first.argv = func(h string) []string { return ownMasterArgv(w, server, path, h) }
	later.argv = first.argv
	f := measure(first)
	pid, err := masterPID(path)
	if err != nil || pid == 0 {
		t.Fatalf("no master at %s after %s on %s (run %d): %v", path, first.name, host, run+1, err)
	}
	l := measure(later)
	endMaster(t, path, pid)
	if host == "bench" {
		first.loopback = append(first.loopback, f.d)
		later.loopback = append(later.loopback, l.d)
		return
	}
	first.delayed, first.flights, first.connections = append(first.delayed, f.d), append(first.flights, f.flights), append(first.connections, f.accepted)
	later.delayed, later.flights, later.connections = append(later.delayed, l.d), append(later.flights, l.flights), append(later.connections, l.accepted)
	t.Logf("own master run %d: first %s (%d flights, %d connections), later %s (%d flights, %d connections)", run+1, f.d, f.flights, f.accepted, l.d, l.flights, l.accepted)
}

// fiveRun is one start of five m2m-ssh at the same moment for one host.
type fiveRun struct {
	starts      []time.Duration // start → initialize response, each
	connections int64           // TCP connections the proxy accepted
	auths       int             // "Accepted publickey" lines sshd logged
	rss         int64           // peak RSS summed over the processes (the master's too)
	pss         int64           // Pss summed over the same, with all of them alive; -1 where /proc does not tell
	masterRSS   int64
}

// fiveReport is the five-at-once measurement over all runs, shared (one
// master, started by whichever of the five gets there first) and
// independent (no ControlPath: five connections).
type fiveReport struct {
	shared, independent []fiveRun
	paths               []string // the shared runs' ControlPaths
}

// fiveAtOnce starts fiveClients m2m-ssh for host together (released by one
// channel close), each sends initialize at once and then calls for one
// fiveBlob result; their memory is read while all are alive, then they
// are ended, and the master with them. argv is for the i-th process.
func fiveAtOnce(t *testing.T, w *world, proxy *DelayProxy, path string, argv func(i int) []string) fiveRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if path != "" {
		watchMaster(t, path)
	}
	proxy.Mark()
	accepted := proxy.Accepted()
	auths := strings.Count(w.sshd.Log(), "Accepted publickey")
	var r fiveRun
	r.starts = make([]time.Duration, fiveClients)
	clients := make([]*client, fiveClients)
	errs := make([]error, fiveClients)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range fiveClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-release
			c, began, err := startClient(ctx, argv(i), w.env)
			if err != nil {
				errs[i] = err
				return
			}
			clients[i] = c
			if _, err := c.call(initialize); err != nil {
				errs[i] = fmt.Errorf("initialize: %w", err)
				return
			}
			r.starts[i] = time.Since(began)
			if err := c.notify(`"method":"notifications/initialized"`); err != nil {
				errs[i] = err
				return
			}
			resp, err := c.call(fmt.Sprintf(`"method":"tools/call","params":{"name":"blob","arguments":{"size":%d}}`, fiveBlob))
			if err != nil {
				errs[i] = fmt.Errorf("blob: %w", err)
			} else if len(resp) < fiveBlob {
				errs[i] = fmt.Errorf("the blob's response holds %d bytes", len(resp))
			}
		}()
	}
	close(release)
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.cmd.Process.Kill()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("five at once: %v", err)
	}
	pids := make([]int, 0, fiveClients+1)
	for _, c := range clients {
		pids = append(pids, c.cmd.Process.Pid)
	}
	var master int
	if path != "" {
		var err error
		if master, err = masterPID(path); err != nil || master == 0 {
			t.Fatalf("no master at %s with five sessions on it: %v", path, err)
		}
		pids = append(pids, master)
		r.masterRSS = sshtest.PeakRSS(t, master)
	}
	for _, pid := range pids {
		r.rss += sshtest.PeakRSS(t, pid)
		pss, err := smapsKB(pid, "Pss:")
		if err != nil || r.pss < 0 {
			// Not Linux, or a kernel without smaps_rollup: RSS alone.
			r.pss = -1
			continue
		}
		r.pss += pss
	}
	for i, c := range clients {
		if _, err := c.close(); err != nil {
			t.Fatalf("five at once, the %d-th: %v", i+1, err)
		}
	}
	endMaster(t, path, master)
	r.connections = proxy.Accepted() - accepted
	r.auths = strings.Count(w.sshd.Log(), "Accepted publickey") - auths
	return r
}

// fiveRunPair measures five at once through the proxy, sharing one master
// and then independent, for run.
func fiveRunPair(t *testing.T, w *world, proxy *DelayProxy, server string, run int, rep *fiveReport) {
	path := ownPath(w, "five", run, "slow")
	shared := fiveAtOnce(t, w, proxy, path, func(int) []string { return ownMasterArgv(w, server, path, "slow") })
	independent := fiveAtOnce(t, w, proxy, "", func(int) []string {
		return []string{w.bin["m2m-ssh"], "-F", w.config, "slow", "--", server}
	})
	rep.paths = append(rep.paths, path)
	rep.shared = append(rep.shared, shared)
	rep.independent = append(rep.independent, independent)
	t.Logf("five at once run %d: shared %v, %d connections, %d authentications, RSS %.1f MiB, Pss %.1f MiB; independent %v, %d connections, RSS %.1f MiB, Pss %.1f MiB",
		run+1, shared.starts, shared.connections, shared.auths, mib(shared.rss), mib(shared.pss), independent.starts, independent.connections, mib(independent.rss), mib(independent.pss))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// smapsKB is a size field of /proc/pid/smaps_rollup, in bytes: Pss counts
// each shared page once over the processes sharing it, where RSS counts
// the binary's pages in every process.
func smapsKB(pid int, field string) (int64, error) {
	return procFileKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), field)
}

// fiveTable prints the five-at-once figures as Markdown: medians over the
// runs of each run's median and slowest start, the connections and
// authentications (every run's, as a range), and memory.
func fiveTable(rep *fiveReport, s latencySettings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| five at once, %s RTT | start → initialize, median | slowest | TCP connections | authentications | peak RSS, summed | Pss, summed | of which the master's peak RSS |\n", s.rtt)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, v := range []struct {
		name string
		runs []fiveRun
	}{{"one master (ControlMaster auto)", rep.shared}, {"independent (no ControlPath)", rep.independent}} {
		var med, slowest []time.Duration
		var conns, auths, rss, pss, master []int64
		for _, r := range v.runs {
			med = append(med, medianDuration(r.starts))
			slowest = append(slowest, slices.Max(r.starts))
			conns, auths = append(conns, r.connections), append(auths, int64(r.auths))
			rss, pss, master = append(rss, r.rss), append(pss, r.pss), append(master, r.masterRSS)
		}
		masterCell := "–"
		if medianInt(master) > 0 {
			masterCell = fmt.Sprintf("%.1f MiB", mib(medianInt(master)))
		}
		pssCell := "not available"
		if slices.Min(pss) >= 0 {
			pssCell = fmt.Sprintf("%.1f MiB", mib(medianInt(pss)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.1f MiB | %s | %s |\n", v.name,
			ms(medianDuration(med)), ms(medianDuration(slowest)), intRange(conns), intRange(auths),
			mib(medianInt(rss)), pssCell, masterCell)
	}
	return b.String()
}

// intRange is a count over the runs: one figure when every run agreed.
func intRange(v []int64) string {
	if len(v) == 0 {
		return ""
	}
	lo, hi := slices.Min(v), slices.Max(v)
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// fiveMasterGone tells that the master at path has ended: it removes its
// socket as it goes.
func fiveMasterGone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}
