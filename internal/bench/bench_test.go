//go:build unix

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// settings are the amounts of work, overridable from the environment for
// quick runs.
type settings struct {
	runs     int // fresh processes per bridge; figures are medians over runs
	seq      int // sequential pings, and again sequential small tool calls
	parallel int // tool calls kept 64 in flight
	// blobDivisor divides the number of calls for each result size.
	blobDivisor int
	servers     []string
}

const inFlight = 64

// nearLimit is the text of the result carried near the default
// --max-frame (64 MiB): as JSON, escapes and all, it is about 58 MiB.
const nearLimit = 48 << 20

// blobs are the tool result sizes whose throughput is measured, with how
// many calls each.
var blobs = []struct {
	name  string
	size  int
	calls int
}{
	{"64 KiB", 64 << 10, 200},
	{"1 MiB", 1 << 20, 30},
	{"16 MiB", 16 << 20, 4},
}

// forServer scales the work down for the go-sdk server, which is an order
// of magnitude slower than any bridge: its figures say how much of a real
// server's time a bridge adds, and need fewer requests to say it.
func (s settings) forServer(server string) settings {
	if server == "go-sdk" {
		s.parallel = max(1, s.parallel/4)
		s.blobDivisor = 4
	}
	return s
}

func loadSettings() settings {
	s := settings{runs: 5, seq: 1000, parallel: 50000, blobDivisor: 1, servers: []string{"raw", "go-sdk"}}
	for _, v := range []struct {
		name string
		p    *int
	}{{"M2M_BENCH_RUNS", &s.runs}, {"M2M_BENCH_SEQ", &s.seq}, {"M2M_BENCH_PARALLEL", &s.parallel}} {
		if n, err := strconv.Atoi(os.Getenv(v.name)); err == nil && n > 0 {
			*v.p = n
		}
	}
	if v := os.Getenv("M2M_BENCH_SERVERS"); v != "" {
		s.servers = strings.Split(v, ",")
	}
	return s
}

// figures are one run of one bridge.
type figures struct {
	start            time.Duration
	pingP50, pingP99 time.Duration
	callP50, callP99 time.Duration
	throughput       []float64 // MiB/s, per blobs entry
	perSecond        float64   // requests/s with inFlight outstanding
	rssIdle, rssPeak int64     // bytes
	// rssLimit is the peak after a frame near the default --max-frame,
	// rssAfter the resident size once 2 × shrinkAfter small frames
	// followed it.
	rssLimit, rssAfter int64
	largest            int // bytes of the largest frame carried
	cpu                time.Duration
}

type bridgeKind struct {
	name string
	argv func(server string) []string
	env  []string
}

func TestBench(t *testing.T) {
	if os.Getenv("M2M_BENCH") == "" {
		t.Skip("set M2M_BENCH=1 to run the benchmark (see docs/benchmarks.md)")
	}
	s := loadSettings()
	w := newWorld(t, map[string]string{"m2m-ssh": ".", "raw": "./internal/bench/rawmcp", "go-sdk": "./internal/testmcp"}, nil)
	bin, sshBin, cfg, env := w.bin, w.ssh, w.config, w.env
	// M2M_BENCH_WRAP runs m2m-ssh under another command, such as
	// "perf record -g -o m2m.perf --", for profiles.
	// M2M_BENCH_ENV adds variables to m2m-ssh's environment
	// ("GOGC=200 GOMAXPROCS=2"), for experiments.
	wrap := strings.Fields(os.Getenv("M2M_BENCH_WRAP"))
	m2mEnv := append(slices.Clone(env), strings.Fields(os.Getenv("M2M_BENCH_ENV"))...)
	kinds := []bridgeKind{
		{"direct", func(server string) []string { return []string{server} }, env},
		{"ssh -T", func(server string) []string { return []string{sshBin, "-T", "-F", cfg, "bench", server} }, env},
		{"m2m-ssh", func(server string) []string {
			return append(slices.Clone(wrap), bin["m2m-ssh"], "-F", cfg, "bench", "--", server)
		}, m2mEnv},
	}
	// M2M_BENCH_BASELINE names other m2m-ssh builds to run alongside, as
	// label=path,label=path, for comparing builds on the same machine at
	// the same time.
	if list := os.Getenv("M2M_BENCH_BASELINE"); list != "" {
		for _, item := range strings.Split(list, ",") {
			label, path, ok := strings.Cut(item, "=")
			if !ok {
				label, path = "baseline", item
			}
			kinds = append(kinds, bridgeKind{label, func(server string) []string {
				return []string{path, "-F", cfg, "bench", "--", server}
			}, m2mEnv})
		}
	}

	fmt.Println(machine(sshBin))
	fmt.Printf("load before: %s\n", load())
	began := time.Now()
	for _, server := range s.servers {
		results := make([][]figures, len(kinds))
		for run := 0; run < s.runs; run++ {
			// Bridges take turns within a run, so that a burst of load
			// from elsewhere falls on all of them alike.
			for k, kind := range kinds {
				f, err := measure(kind.argv(bin[server]), kind.env, s.forServer(server))
				if err != nil {
					t.Fatalf("%s behind %s, run %d: %v", server, kind.name, run+1, err)
				}
				t.Logf("%s %s run %d: %+v", server, kind.name, run+1, f)
				results[k] = append(results[k], f)
			}
		}
		med := make([]figures, len(kinds))
		for k := range kinds {
			med[k] = median(results[k])
		}
		ss := s.forServer(server)
		fmt.Printf("\n### MCP server: %s (medians of %d runs; %d sequential requests of each kind, %d with %d in flight)\n\n", server, s.runs, ss.seq, ss.parallel, inFlight)
		fmt.Print(table(kinds, med))
	}
	fmt.Printf("\nload after: %s; took %s\n", load(), time.Since(began).Round(time.Second))
}

// measure starts argv and puts it through the whole workload once.
func measure(argv, env []string, s settings) (figures, error) {
	var f figures
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, began, err := startClient(ctx, argv, env)
	if err != nil {
		return f, err
	}
	defer c.cmd.Process.Kill()
	if _, err := c.call(initialize); err != nil {
		return f, fmt.Errorf("initialize: %w", err)
	}
	f.start = time.Since(began)
	if err := c.notify(`"method":"notifications/initialized"`); err != nil {
		return f, err
	}
	if _, err := c.call(`"method":"ping"`); err != nil {
		return f, err
	}
	if f.rssIdle, err = hwm(c.cmd.Process.Pid); err != nil {
		return f, err
	}

	seq := func(body string) (p50, p99 time.Duration, err error) {
		d := make([]time.Duration, s.seq)
		for i := range d {
			t0 := time.Now()
			if _, err := c.call(body); err != nil {
				return 0, 0, err
			}
			d[i] = time.Since(t0)
		}
		return percentile(d, 50), percentile(d, 99), nil
	}
	if f.pingP50, f.pingP99, err = seq(`"method":"ping"`); err != nil {
		return f, fmt.Errorf("ping: %w", err)
	}
	const echo = `"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}`
	if f.callP50, f.callP99, err = seq(echo); err != nil {
		return f, fmt.Errorf("echo: %w", err)
	}

	if f.perSecond, err = parallel(c, echo, s.parallel); err != nil {
		return f, fmt.Errorf("%d in flight: %w", inFlight, err)
	}

	for _, b := range blobs {
		body := fmt.Sprintf(`"method":"tools/call","params":{"name":"blob","arguments":{"size":%d}}`, b.size)
		// One call first, so that a server that builds results once
		// is not timed building them.
		if _, err := c.call(body); err != nil {
			return f, fmt.Errorf("blob %s: %w", b.name, err)
		}
		calls := max(2, b.calls/s.blobDivisor)
		t0 := time.Now()
		for range calls {
			resp, err := c.call(body)
			if err != nil {
				return f, fmt.Errorf("blob %s: %w", b.name, err)
			}
			if len(resp) < b.size {
				return f, fmt.Errorf("blob %s: the response holds %d bytes", b.name, len(resp))
			}
			f.largest = max(f.largest, len(resp))
		}
		f.throughput = append(f.throughput, float64(b.size*calls)/(1<<20)/time.Since(t0).Seconds())
	}

	// VmHWM rather than wait4's maxrss: Linux carries the forking
	// process's peak over the exec into maxrss.
	if f.rssPeak, err = hwm(c.cmd.Process.Pid); err != nil {
		return f, err
	}

	// One frame near the limit, then small ones: the peak it costs, and
	// whether the memory goes back.
	body := fmt.Sprintf(`"method":"tools/call","params":{"name":"blob","arguments":{"size":%d}}`, nearLimit)
	if _, err := c.call(body); err != nil {
		return f, fmt.Errorf("blob near the limit: %w", err)
	}
	if f.rssLimit, err = hwm(c.cmd.Process.Pid); err != nil {
		return f, err
	}
	for range 32 {
		if _, err := c.call(`"method":"ping"`); err != nil {
			return f, err
		}
	}
	if f.rssAfter, err = procKB(c.cmd.Process.Pid, "VmRSS:"); err != nil {
		return f, err
	}
	ru, err := c.close()
	if err != nil {
		return f, err
	}
	f.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return f, nil
}

// parallel sends n requests, keeping inFlight of them unanswered, and
// returns the rate of answers.
func parallel(c *client, body string, n int) (float64, error) {
	slots := make(chan struct{}, inFlight)
	sent := make(chan error, 1)
	t0 := time.Now()
	go func() {
		for range n {
			slots <- struct{}{}
			if _, err := c.request(body); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for range n {
		if _, err := c.response(); err != nil {
			return 0, err
		}
		<-slots
	}
	if err := <-sent; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

func median(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	dur := func(get func(figures) time.Duration) time.Duration {
		return time.Duration(pick(func(f figures) float64 { return float64(get(f)) }))
	}
	m := figures{
		start:     dur(func(f figures) time.Duration { return f.start }),
		pingP50:   dur(func(f figures) time.Duration { return f.pingP50 }),
		pingP99:   dur(func(f figures) time.Duration { return f.pingP99 }),
		callP50:   dur(func(f figures) time.Duration { return f.callP50 }),
		callP99:   dur(func(f figures) time.Duration { return f.callP99 }),
		perSecond: pick(func(f figures) float64 { return f.perSecond }),
		rssIdle:   int64(pick(func(f figures) float64 { return float64(f.rssIdle) })),
		rssPeak:   int64(pick(func(f figures) float64 { return float64(f.rssPeak) })),
		rssLimit:  int64(pick(func(f figures) float64 { return float64(f.rssLimit) })),
		rssAfter:  int64(pick(func(f figures) float64 { return float64(f.rssAfter) })),
		cpu:       dur(func(f figures) time.Duration { return f.cpu }),
		largest:   fs[0].largest,
	}
	for i := range blobs {
		m.throughput = append(m.throughput, pick(func(f figures) float64 { return f.throughput[i] }))
	}
	return m
}

// table prints the medians of direct, ssh and m2m-ssh (in that order)
// with m2m-ssh's ratios to the other two, as Markdown.
func table(kinds []bridgeKind, m []figures) string {
	var b strings.Builder
	extra, extraSep := "", ""
	for _, k := range kinds[3:] {
		extra += " " + k.name + " |"
		extraSep += "--:|"
	}
	fmt.Fprintln(&b, "| figure | direct (floor) | ssh -T | m2m-ssh | m2m-ssh ÷ ssh | m2m-ssh ÷ floor | target | met |"+extra)
	fmt.Fprintln(&b, "|---|--:|--:|--:|--:|--:|---|---|"+extraSep)
	row := func(name string, get func(figures) float64, unit func(float64) string, target string, met func(m2m, ssh float64) bool) {
		d, s, x := get(m[0]), get(m[1]), get(m[2])
		verdict := ""
		if met != nil {
			verdict = "no"
			if met(x, s) {
				verdict = "yes"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.2f | %s | %s |", name, unit(d), unit(s), unit(x), x/s, x/d, target, verdict)
		for _, f := range m[3:] {
			fmt.Fprintf(&b, " %s |", unit(get(f)))
		}
		b.WriteString("\n")
	}
	ms := func(v float64) string {
		if v < 1e6 {
			return fmt.Sprintf("%.0f µs", v/1e3)
		}
		return fmt.Sprintf("%.1f ms", v/1e6)
	}
	mibs := func(v float64) string { return fmt.Sprintf("%.0f MiB/s", v) }
	mib := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	noWorse := func(x, s float64) bool { return x <= s }
	noLess := func(x, s float64) bool { return x >= s }
	d := func(get func(figures) time.Duration) func(figures) float64 {
		return func(f figures) float64 { return float64(get(f)) }
	}
	row("start → initialize response", d(func(f figures) time.Duration { return f.start }), ms, "≤ ssh", noWorse)
	row("ping p50", d(func(f figures) time.Duration { return f.pingP50 }), ms, "≤ ssh", noWorse)
	row("ping p99", d(func(f figures) time.Duration { return f.pingP99 }), ms, "≤ ssh", noWorse)
	row("tools/call echo p50", d(func(f figures) time.Duration { return f.callP50 }), ms, "≤ ssh", noWorse)
	row("tools/call echo p99", d(func(f figures) time.Duration { return f.callP99 }), ms, "≤ ssh", noWorse)
	for i, bl := range blobs {
		var met func(x, s float64) bool
		target := ""
		if i == len(blobs)-1 {
			met, target = noLess, "≥ ssh"
		}
		row("throughput, "+bl.name+" results", func(f figures) float64 { return f.throughput[i] }, mibs, target, met)
	}
	row(fmt.Sprintf("requests/s, %d in flight", inFlight), func(f figures) float64 { return f.perSecond },
		func(v float64) string { return fmt.Sprintf("%.0f", v) }, "≥ ssh", noLess)
	row("peak RSS, idle", func(f figures) float64 { return float64(f.rssIdle) }, mib, "< 20 MiB",
		func(x, _ float64) bool { return x < 20<<20 })
	// The largest frame is the 16 MiB text as JSON, escapes and all.
	largest := m[2].largest
	row("peak RSS, whole run", func(f figures) float64 { return float64(f.rssPeak) }, mib,
		fmt.Sprintf("< 3 × %.1f MiB frame + 16 MiB", float64(largest)/(1<<20)),
		func(x, _ float64) bool { return x < float64(3*largest+16<<20) })
	row("peak RSS, a 58 MiB frame (limit 64 MiB)", func(f figures) float64 { return float64(f.rssLimit) }, mib,
		"< 3 × 64 MiB + 16 MiB", func(x, _ float64) bool { return x < 3*64<<20+16<<20 })
	row("RSS, 32 small frames after it", func(f figures) float64 { return float64(f.rssAfter) }, mib,
		"< idle + 10 MiB", func(x, _ float64) bool { return x < float64(m[2].rssIdle+10<<20) })
	row("CPU time, whole run", d(func(f figures) time.Duration { return f.cpu }), ms, "", nil)
	return b.String()
}

func machine(sshBin string) string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	sshV, _ := exec.Command(sshBin, "-V").CombinedOutput()
	return fmt.Sprintf("machine: %d CPUs (%s), Linux %s, %s, %s",
		runtime.NumCPU(), cpu, strings.TrimSpace(string(kernel)), runtime.Version(), strings.TrimSpace(string(sshV)))
}

func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return "load average " + strings.Join(f[:min(3, len(f))], " ")
}
