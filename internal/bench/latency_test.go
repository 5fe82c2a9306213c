//go:build unix

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// latencySettings are the latency mode's knobs.
type latencySettings struct {
	runs int           // fresh processes per path and link; figures are medians
	rtt  time.Duration // the delayed link's round-trip time
}

// defaultLatencyRuns keeps the mode to a few minutes on 2 cores: each run
// starts 32 processes (twelve one after another, then five at once twice,
// through the proxy), about 8 s together on a 50 ms link.
const defaultLatencyRuns = 11

func loadLatencySettings() latencySettings {
	s := latencySettings{runs: defaultLatencyRuns, rtt: 50 * time.Millisecond}
	if n, err := strconv.Atoi(os.Getenv("M2M_BENCH_RUNS")); err == nil && n > 0 {
		s.runs = n
	}
	if d, err := time.ParseDuration(os.Getenv("M2M_BENCH_RTT")); err == nil && d > 0 {
		s.rtt = d
	}
	return s
}

// TestLatency is the latency mode: start → initialize response through a
// link with a set round-trip time, cold and through an OpenSSH master.
func TestLatency(t *testing.T) {
	if os.Getenv("M2M_BENCH_LATENCY") == "" {
		t.Skip("set M2M_BENCH_LATENCY=1 to run the latency mode (see docs/benchmarks.md)")
	}
	latencyMode(t, os.Stdout)
}

// latencyMode runs the mode with the settings from the environment and
// prints its report to out.
func latencyMode(t *testing.T, out io.Writer) ([]*latencyRow, *fiveReport) {
	s := loadLatencySettings()
	began := time.Now()
	fmt.Fprintln(out, machine(sshBinary()))
	fmt.Fprintf(out, "load before: %s\n", load())
	rows, five := runLatency(t, s)
	fmt.Fprintf(out, "\n### start → initialize response, %s RTT (medians of %d runs)\n\n", s.rtt, s.runs)
	fmt.Fprint(out, latencyTable(rows, s))
	fmt.Fprintf(out, "\n### five m2m-ssh at once for one host, %s RTT (medians of %d runs)\n\n", s.rtt, s.runs)
	fmt.Fprint(out, fiveTable(five, s))
	fmt.Fprintf(out, "\nload after: %s; took %s\n", load(), time.Since(began).Round(time.Second))
	return rows, five
}

// TestShortLatencyRun runs the latency mode as docs/benchmarks.md gives it,
// once and on a short delay, so that the command keeps working, and checks
// what the delay guarantees: no path is faster than the round trips it
// cannot avoid.
func TestShortLatencyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds m2m-ssh and starts sshd")
	}
	t.Setenv("M2M_BENCH_RUNS", "1")
	t.Setenv("M2M_BENCH_RTT", "20ms")
	s := loadLatencySettings()
	if s.runs != 1 || s.rtt != 20*time.Millisecond {
		t.Fatalf("settings %+v: the knobs were not read", s)
	}
	var out strings.Builder
	rows, five := latencyMode(t, &out)
	table := out.String()
	t.Logf("\n%s", table)
	// At least: TCP, key exchange, authentication, the channel and the
	// initialize request for a cold start; the channel's opening and
	// the request through a master.
	least := map[string]int{"ssh -T, cold": 5, "m2m-ssh, cold": 5, "ssh -S, through a master": 2, "m2m-ssh, through a master": 2,
		ownFirst: 5, ownLater: 2}
	for _, r := range rows {
		if r.unavailable != "" {
			if !strings.Contains(table, r.unavailable) {
				t.Errorf("the table does not say why %q is not available", r.name)
			}
			continue
		}
		if len(r.delayed) != s.runs || len(r.loopback) != s.runs {
			t.Fatalf("%s: %d delayed and %d loopback figures, want %d each", r.name, len(r.delayed), len(r.loopback), s.runs)
		}
		if d := medianDuration(r.delayed); d < time.Duration(least[r.name])*s.rtt {
			t.Errorf("%s took %s through a %s link: fewer than the %d round trips it must spend", r.name, d, s.rtt, least[r.name])
		}
		if f := medianInt(r.flights); f < int64(least[r.name]) {
			t.Errorf("%s sent %d flights, want at least %d", r.name, f, least[r.name])
		}
		if !strings.Contains(table, "| "+r.name+" |") {
			t.Errorf("the table has no row for %s:\n%s", r.name, table)
		}
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	for _, r := range rows {
		switch r.name {
		case ownFirst, ownLater:
			if r.unavailable != "" {
				t.Errorf("%s: %s", r.name, r.unavailable)
			}
		}
	}
	checkFive(t, five, s, table)
}

// checkFive checks what five at once cannot miss: one connection for the
// five sharing a master and five without one, every start slower than
// the cold path's unavoidable round trips (none had a connection to
// ride), every master gone.
func checkFive(t *testing.T, five *fiveReport, s latencySettings, table string) {
	t.Helper()
	if len(five.shared) != s.runs || len(five.independent) != s.runs {
		t.Fatalf("%d shared and %d independent runs of five at once, want %d each", len(five.shared), len(five.independent), s.runs)
	}
	for _, v := range []struct {
		name  string
		runs  []fiveRun
		conns int64
	}{{"sharing a master", five.shared, 1}, {"independent", five.independent, fiveClients}} {
		for _, r := range v.runs {
			if r.connections != v.conns {
				t.Errorf("five at once, %s: the proxy accepted %d connections, want %d", v.name, r.connections, v.conns)
			}
			if len(r.starts) != fiveClients {
				t.Fatalf("five at once, %s: %d figures", v.name, len(r.starts))
			}
			for i, d := range r.starts {
				if d < 5*s.rtt {
					t.Errorf("five at once, %s: the %d-th took %s, fewer than 5 round trips of %s", v.name, i+1, d, s.rtt)
				}
			}
			if r.rss <= 0 {
				t.Errorf("five at once, %s: no RSS figure", v.name)
			}
		}
	}
	for _, p := range five.paths {
		if !fiveMasterGone(p) {
			t.Errorf("the master's socket %s outlived the test's exit request", p)
		}
	}
	if !strings.Contains(table, "| one master (ControlMaster auto) |") || !strings.Contains(table, "| independent (no ControlPath) |") {
		t.Errorf("the table has no five-at-once rows:\n%s", table)
	}
}

// latencyRow is one way of starting a session, measured on loopback and
// through the delaying proxy.
type latencyRow struct {
	name string
	// argv is the command for the host alias given.
	argv func(host string) []string
	env  []string
	// master is the control socket's path per host, for paths through a
	// master.
	master            map[string]string
	unavailable       string // why the row was not measured
	loopback, delayed []time.Duration
	flights           []int64 // the client's flights through the proxy, per delayed run
	// own is set for the rows of m2m-ssh's own master, measured by
	// ownMasterRun rather than one process at a time.
	own         bool
	connections []int64 // the connections the proxy accepted, per delayed run of an own row
}

// The rows of m2m-ssh's own master: the m2m-ssh that finds none and
// starts it, and one after that rides it.
const (
	ownFirst = "m2m-ssh, own master (first)"
	ownLater = "m2m-ssh, own master (later)"
)

func sshBinary() string {
	p, err := exec.LookPath("ssh")
	if err != nil {
		return "ssh"
	}
	return p
}

// runLatency measures the four paths: ssh -T and m2m-ssh cold, and ssh -S
// and m2m-ssh through an OpenSSH master, each on loopback ("bench") and
// through the proxy ("slow"), taking turns within every run.
func runLatency(t *testing.T, s latencySettings) ([]*latencyRow, *fiveReport) {
	var proxy *DelayProxy
	w := newWorld(t, map[string]string{"m2m-ssh": ".", "raw": "./internal/bench/rawmcp"}, func(sshdAddr string) map[string]string {
		var err error
		proxy, err = StartDelayProxy(sshdAddr, s.rtt/2)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		return map[string]string{"slow": proxy.Addr}
	})
	server := w.bin["raw"]
	masters := map[string]string{}
	for _, host := range []string{"bench", "slow"} {
		masters[host] = startMaster(t, w, host)
	}
	rows := []*latencyRow{
		{name: "ssh -T, cold", env: w.env, argv: func(host string) []string {
			return []string{w.ssh, "-T", "-F", w.config, host, server}
		}},
		{name: "m2m-ssh, cold", env: w.env, argv: func(host string) []string {
			return []string{w.bin["m2m-ssh"], "-F", w.config, host, "--", server}
		}},
		{name: "ssh -S, through a master", env: w.env, master: masters, argv: func(host string) []string {
			return []string{w.ssh, "-S", masters[host], "-T", "-F", w.config, host, server}
		}},
		{name: "m2m-ssh, through a master", env: w.env, master: masters, argv: func(host string) []string {
			return []string{w.bin["m2m-ssh"], "-F", w.config, "-o", "ControlPath=" + masters[host], host, "--", server}
		}},
		{name: ownFirst, env: w.env, own: true},
		{name: ownLater, env: w.env, own: true},
	}
	five := &fiveReport{}
	for run := 0; run < s.runs; run++ {
		for _, r := range rows {
			if r.unavailable != "" || r.own {
				continue
			}
			lo, err := startToInitialize(r.argv("bench"), r.env, nil)
			if err != nil {
				t.Fatalf("%s on loopback, run %d: %v", r.name, run+1, err)
			}
			proxy.Mark()
			accepted, flights := proxy.Accepted(), proxy.Flights()
			var spent int64
			d, err := startToInitialize(r.argv("slow"), r.env, func() { spent = proxy.Flights() - flights })
			if err != nil {
				t.Fatalf("%s through the proxy, run %d: %v", r.name, run+1, err)
			}
			if r.master != nil && proxy.Accepted() != accepted {
				// It did not ride the master: the figure would be
				// a cold start's.
				r.unavailable = "this build does not ride an OpenSSH master (ControlPath): it connected on its own"
				r.loopback, r.delayed, r.flights = nil, nil, nil
				continue
			}
			r.loopback = append(r.loopback, lo)
			r.delayed = append(r.delayed, d)
			r.flights = append(r.flights, spent)
			t.Logf("%s run %d: loopback %s, %s RTT %s, %d flights", r.name, run+1, lo, s.rtt, d, r.flights[len(r.flights)-1])
		}
		first, later := rows[len(rows)-2], rows[len(rows)-1]
		for _, host := range []string{"bench", "slow"} {
			ownMasterRun(t, w, proxy, first, later, server, run, host)
		}
		fiveRunPair(t, w, proxy, server, run, five)
	}
	ownAvailable(rows[len(rows)-2], 1)
	ownAvailable(rows[len(rows)-1], 0)
	return rows, five
}

// ownAvailable marks an own-master row not available when a run through
// the proxy made other than conns connections: the figure would not be
// the path it names.
func ownAvailable(r *latencyRow, conns int64) {
	for _, c := range r.connections {
		if c != conns {
			r.unavailable = fmt.Sprintf("a run made %d connections through the proxy, not %d: this build does not start or ride a master of its own", c, conns)
			return
		}
	}
}

// startMaster starts `ssh -M -S PATH -fN` to host and returns PATH; the
// master is told to exit at the end of the test.
func startMaster(t *testing.T, w *world, host string) string {
	sock := filepath.Join(w.dir, host+".sock")
	log, err := os.Create(filepath.Join(w.dir, host+"-master.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// -f: ssh goes to the background once the connection is up, with the
	// control socket listening; its output goes to a file, which the
	// background process keeps open after this command returns.
	cmd := exec.CommandContext(ctx, w.ssh, "-M", "-S", sock, "-fN", "-F", w.config, host)
	cmd.Env, cmd.Stderr = w.env, log
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("ssh -M to %s: %v\n%s", host, err, b)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		exit := exec.CommandContext(ctx, w.ssh, "-S", sock, "-O", "exit", "-F", w.config, host)
		exit.Env = w.env
		exit.Run()
	})
	check := exec.CommandContext(ctx, w.ssh, "-S", sock, "-O", "check", "-F", w.config, host)
	check.Env = w.env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("ssh -O check %s: %v\n%s", host, err, out)
	}
	return sock
}

// startToInitialize starts argv, sends initialize at once and returns how
// long the response took from the start, then ends the process. answered,
// when set, is called as the response arrives.
func startToInitialize(argv, env []string, answered func()) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, began, err := startClient(ctx, argv, env)
	if err != nil {
		return 0, err
	}
	defer c.cmd.Process.Kill()
	if _, err := c.call(initialize); err != nil {
		return 0, fmt.Errorf("initialize: %w", err)
	}
	d := time.Since(began)
	if answered != nil {
		answered()
	}
	if _, err := c.close(); err != nil {
		return 0, err
	}
	return d, nil
}

// latencyTable prints the rows as Markdown: medians and spreads on each
// link, the round trips spent beyond loopback, and the targets.
func latencyTable(rows []*latencyRow, s latencySettings) string {
	var b strings.Builder
	rtt := fmt.Sprintf("%s RTT", s.rtt)
	fmt.Fprintf(&b, "| path | loopback | spread | %s | spread | round trips | flights | target | met |\n", rtt)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|---|---|\n")
	byName := map[string]*latencyRow{}
	for _, r := range rows {
		byName[r.name] = r
	}
	trips := func(r *latencyRow) float64 {
		return float64(medianDuration(r.delayed)-medianDuration(r.loopback)) / float64(s.rtt)
	}
	for _, r := range rows {
		if r.unavailable != "" {
			fmt.Fprintf(&b, "| %s | not available: %s |  |  |  |  |  |  |  |\n", r.name, r.unavailable)
			continue
		}
		target, met := "", ""
		verdict := func(ok bool) string {
			if ok {
				return "yes"
			}
			return "no"
		}
		switch r.name {
		case "m2m-ssh, cold":
			target = "≤ ssh -T, cold"
			if o := byName["ssh -T, cold"]; o.unavailable == "" {
				met = verdict(medianDuration(r.delayed) <= medianDuration(o.delayed))
			}
		case ownLater:
			target = "≤ 2.5 round trips"
			met = verdict(trips(r) <= 2.5)
		case "m2m-ssh, through a master":
			target = "≤ ssh -S; ≤ 2.5 round trips"
			if o := byName["ssh -S, through a master"]; o.unavailable == "" {
				met = verdict(medianDuration(r.delayed) <= medianDuration(o.delayed) && trips(r) <= 2.5)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f | %d | %s | %s |\n", r.name,
			ms(medianDuration(r.loopback)), spread(r.loopback), ms(medianDuration(r.delayed)), spread(r.delayed),
			trips(r), medianInt(r.flights), target, met)
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// spread is the range of the figures, min–max.
func spread(d []time.Duration) string {
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f–%.0f ms", float64(slices.Min(d))/1e6, float64(slices.Max(d))/1e6)
}

func medianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
