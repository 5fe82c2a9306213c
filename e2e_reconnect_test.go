//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// viaRelay are the arguments that reach buildbox through r, running
// testmcp with its pid written to pidfile.
func (w *world) viaRelay(t *testing.T, r *sshtest.Relay, pidfile string, extra ...string) []string {
	t.Helper()
	_, port, err := net.SplitHostPort(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var kh []string
	for _, k := range w.sshd.HostKeys {
		kh = append(kh, fmt.Sprintf("[%s]:%s %s", w.sshd.Host, port, k))
	}
	khFile := sshtest.WriteFile(t, w.dir, "known_hosts_"+port, kh...)
	args := append([]string{"-o", "Port=" + port, "-o", "UserKnownHostsFile=" + khFile}, extra...)
	return append(args, "buildbox", "--", "TESTMCP_PIDFILE="+pidfile, bins.testmcp)
}

// rawHost drives m2m-ssh with hand-written frames, for tests that need to
// know which request reached the server when.
type rawHost struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    chan map[string]any
	stderr *sshtest.Buffer
}

func startRaw(t *testing.T, cmd *exec.Cmd) *rawHost {
	t.Helper()
	h := &rawHost{t: t, cmd: cmd, out: make(chan map[string]any, 64), stderr: &sshtest.Buffer{}}
	cmd.Stderr = h.stderr
	var err error
	if h.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go readFrames(stdout, h.out)
	t.Cleanup(func() {
		h.in.Close()
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("m2m-ssh stderr:\n%s", h.stderr)
		}
	})
	return h
}

// readFrames sends each line of m2m-ssh's stdout to out as a message, or
// as {"corrupt": line} when it is not JSON, and closes out at the end.
func readFrames(stdout io.Reader, out chan<- map[string]any) {
	defer close(out)
	r := bufio.NewReaderSize(stdout, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var m map[string]any
			if json.Unmarshal(line, &m) != nil {
				m = map[string]any{"corrupt": string(line)}
			}
			out <- m
		}
		if err != nil {
			return
		}
	}
}

// endBound bounds m2m-ssh's exit at stdin EOF behind a remote that exits
// at EOF: its graces, many times over for a loaded machine.
const endBound = 30 * time.Second

// endLog ends the session as a host does (stdin closed), waits for
// m2m-ssh to exit, and returns all it wrote to stderr. A test that checks
// the log reads it here: until Wait returns, the copy of m2m-ssh's stderr
// may lag behind what it wrote, even behind frames already read from its
// stdout, which another goroutine copies.
func (h *rawHost) endLog() string {
	h.t.Helper()
	h.in.Close()
	h.waitExit(endBound)
	return h.stderr.String()
}

func (h *rawHost) send(format string, args ...any) {
	h.t.Helper()
	if _, err := fmt.Fprintf(h.in, format+"\n", args...); err != nil {
		h.t.Fatalf("writing to m2m-ssh: %v", err)
	}
}

// recv returns the next frame that is not a notification.
func (h *rawHost) recv(within time.Duration) map[string]any {
	h.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-h.out:
			if !ok {
				h.t.Fatal("m2m-ssh closed stdout")
			}
			if m["corrupt"] != nil {
				h.t.Fatalf("m2m-ssh wrote a frame that is not JSON: %.100q", m["corrupt"])
			}
			if m["method"] != nil && m["id"] == nil {
				continue
			}
			return m
		case <-timer.C:
			h.t.Fatalf("no answer within %s", within)
		}
	}
}

func (h *rawHost) call(id int, tool string, args string) {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, args)
}

func (h *rawHost) initialize() {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if m := h.recv(30 * time.Second); m["id"] != 0.0 || m["result"] == nil {
		h.t.Fatalf("initialize = %v", m)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// echo calls the echo tool and checks that it answers within d.
func (h *rawHost) echo(id int, d time.Duration) {
	h.t.Helper()
	text := fmt.Sprintf("echo %d ✓", id)
	h.call(id, "echo", fmt.Sprintf(`{"text":%q}`, text))
	m := h.recv(d)
	res, _ := m["result"].(map[string]any)
	if m["id"] != float64(id) || res == nil || fmt.Sprint(res["content"]) != fmt.Sprint([]any{map[string]any{"type": "text", "text": text}}) {
		h.t.Fatalf("echo %d = %v", id, m)
	}
}

// backBound is how soon after the path is back the next request must
// succeed: 2 s for m2m-ssh, plus twice what connecting and starting the
// remote program took the first time. That time is the server's (sshd runs
// the command through the user's shell, and a .bashrc that runs pyenv init
// takes seconds on a busy machine), not m2m-ssh's to shorten.
func backBound(t *testing.T, startup time.Duration) time.Duration {
	t.Logf("the first connection and start took %s", startup.Round(time.Millisecond))
	return 2*time.Second + 2*startup
}

// A cut path and a remote that exits are made good: the request in flight
// gets an error at once, the session comes back by itself with the same
// handshake, and the next request succeeds within 2 s.
func TestEndToEndReconnect(t *testing.T) {
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	pidfile := filepath.Join(w.dir, "testmcp.pid")
	start := time.Now()
	h := startRaw(t, w.command(w.viaRelay(t, relay, pidfile, "--log-level", "DEBUG")...))
	h.initialize()
	bound := backBound(t, time.Since(start))
	h.echo(1, 30*time.Second)

	faults := []struct {
		name  string
		fault func()
		also  int // a further request in flight, after the sleep
		want  string
	}{
		{"cut", relay.Cut, 0, "(the connection closed)"},
		{"remote exits", func() { h.call(90, "exit", `{"code":3}`) }, 90, "(the remote MCP server exited with status 3)"},
	}
	id := 100
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			h.t = t
			id += 10
			before := relay.Accepted()
			// The echo behind the sleep proves the sleep reached the
			// server: frames arrive in order.
			h.call(id, "sleep", `{"millis":60000}`)
			h.echo(id+1, 10*time.Second)
			f.fault()
			for _, inFlight := range []int{id, f.also} {
				if inFlight == 0 {
					continue
				}
				m := h.recv(5 * time.Second)
				e, _ := m["error"].(map[string]any)
				if m["id"] != float64(inFlight) || e == nil || e["code"] != float64(bridge.CodeConnectionLost) {
					t.Fatalf("request %d in flight: got %v; want error %d", inFlight, m, bridge.CodeConnectionLost)
				}
				if msg := e["message"].(string); !strings.Contains(msg, "connection to buildbox was lost "+f.want) || !strings.Contains(msg, "may or may not have run") {
					t.Fatalf("message %q does not say what happened", msg)
				}
			}
			h.echo(id+2, bound)
			if relay.Accepted() != before+1 {
				t.Fatalf("%d connections since the fault, want 1", relay.Accepted()-before)
			}
		})
	}
	h.t = t
	h.in.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("m2m-ssh after stdin EOF: %v", err)
	}
	if !strings.Contains(h.stderr.String(), "reconnected") {
		t.Fatalf("the log does not tell of the reconnect:\n%s", h.stderr)
	}
}

// A remote that crashes at start makes m2m-ssh give up after
// --max-reconnects tries, answer everything and exit non-zero.
func TestEndToEndRemoteCrashesAtStart(t *testing.T) {
	w := newWorld(t)
	h := startRaw(t, w.command("--max-reconnects", "2", "buildbox", "--", "echo 'testmcp: cannot start' >&2; exit 3"))
	h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	answered := 0
	for id := 0; ; id++ {
		if id > 0 {
			h.send(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, id)
		}
		m := h.recv(30 * time.Second)
		if m["id"] != float64(id) || m["error"] == nil {
			t.Fatalf("request %d got %v; want an error", id, m)
		}
		answered++
		if msg := m["error"].(map[string]any)["message"].(string); strings.Contains(msg, "gave up after 2 tries") {
			break
		}
		if id > 200 {
			t.Fatal("m2m-ssh does not give up")
		}
	}
	h.in.Close()
	err := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != bridge.ExitStatus {
		t.Fatalf("m2m-ssh ended with %v; want exit status %d", err, bridge.ExitStatus)
	}
	for _, want := range []string{"m2m-ssh: error: ", "m2m-ssh: hint: ", "remote: testmcp: cannot start", "exited with status 3"} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Fatalf("stderr lacks %q:\n%s", want, h.stderr)
		}
	}
}

// readPid waits for testmcp to write its pid.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(string(b)); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("testmcp wrote no pid to %s", path)
		}
		time.Sleep(10 * time.Millisecond) // polling a file another process writes
	}
}

// gone waits for the process to end, as seen from the server's side.
func gone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the remote process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling the process table
	}
}

// Shutting down, by stdin EOF, SIGTERM or SIGHUP, ends the remote process too; a
// session restored after the remote exited is what shuts down.
func TestEndToEndShutdown(t *testing.T) {
	// As a user whose remote programs sshd will signal: after a signal
	// the remote has a fraction of a second to exit at EOF before m2m-ssh
	// has it stopped, and a slow one (under the race detector) is.
	login := sshtest.UnprivilegedUser(t)
	w := newWorldAs(t, login.Username)
	for _, how := range []string{"stdin EOF", "SIGTERM", "SIGHUP"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			relay := sshtest.StartRelay(t, w.sshd.Addr())
			pidfile := filepath.Join(sshtest.UserDir(t, login), strings.ReplaceAll(how, " ", "-")+".pid")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := w.command(w.viaRelay(t, relay, pidfile)...)
			s, err := connect(t, ctx, cmd)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer s.Close()
			first := readPid(t, pidfile)
			os.Remove(pidfile)
			// The exit call is answered with an error; the session comes
			// back on a new process (how soon is TestEndToEndReconnect's
			// "remote exits"; ctx is the hang guard here).
			_, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "exit", Arguments: map[string]any{"code": 0}})
			if err == nil || !strings.Contains(err.Error(), "connection to buildbox was lost") {
				t.Fatalf("exit call: %v; want the lost-connection error", err)
			}
			res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "pid"})
			if err != nil {
				t.Fatalf("pid after the remote exited: %v", err)
			}
			second := readPid(t, pidfile)
			if got := res.Content[0].(*mcp.TextContent).Text; got != strconv.Itoa(second) || second == first {
				t.Fatalf("pid = %s, want the new process %d (the first was %d)", got, second, first)
			}
			gone(t, first)

			if sig := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP}[how]; sig != 0 {
				cmd.Process.Signal(sig)
				if err := s.Wait(); err != nil && !errors.Is(err, mcp.ErrConnectionClosed) {
					t.Logf("session ended with %v", err)
				}
			}
			s.Close()
			// The remote's status: 0 when it ended at EOF, or TERM's when
			// it was slower than the grace a signal leaves and m2m-ssh had
			// the server stop it.
			want := map[int]bool{0: true}
			if how != "stdin EOF" {
				want[128+int(syscall.SIGTERM)] = true
			}
			if st := cmd.ProcessState; st == nil || !want[st.ExitCode()] {
				t.Fatalf("m2m-ssh ended with %v; want the remote's status (%v)", st, want)
			}
			gone(t, second)
		})
	}
}

// TestEndToEndSoak runs thousands of tool calls, 64 at a time, through the
// real client, m2m-ssh and sshd while the path is cut again and again:
// every call ends, with its own result or an error of m2m-ssh's.
func TestEndToEndSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	const (
		calls    = 2000
		inFlight = 64
		cutEvery = 500
	)
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	begin := time.Now()
	s, err := connect(t, ctx, w.command(w.viaRelay(t, relay, filepath.Join(w.dir, "pid"))...))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	bound := backBound(t, time.Since(begin))
	defer s.Close()

	var done, results, errs, lost, corrupt atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				text := fmt.Sprintf("%d:%s", i, sshtest.Blob(i%3000))
				callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
				res, err := s.CallTool(callCtx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
				hung := callCtx.Err() != nil
				cancel()
				switch {
				case hung:
					lost.Add(1)
				case err != nil && strings.Contains(err.Error(), "m2m-ssh: "):
					errs.Add(1)
				case err != nil:
					corrupt.Add(1)
					t.Errorf("call %d: %v", i, err)
				case res.Content[0].(*mcp.TextContent).Text != text:
					corrupt.Add(1)
					t.Errorf("call %d: the result differs", i)
				default:
					results.Add(1)
				}
				if n := done.Add(1); n%cutEvery == 0 && n < calls {
					relay.Cut()
				}
			}
		}()
	}
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d calls: %d results, %d errors of m2m-ssh's, %d lost, %d corrupt; %d connections",
		calls, results.Load(), errs.Load(), lost.Load(), corrupt.Load(), relay.Accepted())
	if lost.Load() != 0 || corrupt.Load() != 0 {
		t.Fatalf("lost %d, corrupt %d; want 0", lost.Load(), corrupt.Load())
	}
	if relay.Accepted() < calls/cutEvery {
		t.Fatalf("%d connections: the cuts did not happen", relay.Accepted())
	}
	start := time.Now()
	if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "after"}}); err != nil || time.Since(start) > bound {
		t.Fatalf("a call after the soak: %v after %s", err, time.Since(start))
	}
}

// A ProxyCommand that fails while the network is down (a laptop that just
// woke) is tried again with backoff, not taken for a verdict, and the
// session comes back through it once it works.
func TestEndToEndProxyCommandHeals(t *testing.T) {
	sshtest.LookPath(t, "nc")
	w := newWorld(t)
	relay := sshtest.StartRelay(t, w.sshd.Addr())
	up := filepath.Join(w.dir, "network-up")
	runs := filepath.Join(w.dir, "proxy-runs")
	if err := os.WriteFile(up, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := fmt.Sprintf("ProxyCommand=sh -c 'echo run >> %s; [ -e %s ] || { echo network is down >&2; exit 1; }; exec nc %%h %%p'", runs, up)
	pidfile := filepath.Join(w.dir, "testmcp.pid")
	// nc does not end when the relay closes its connection, only at its
	// next write, so m2m-ssh sees the cut at its next keepalive: every
	// second here, not the default 15 s. The count is high so that a slow
	// answer on a loaded machine is not taken for a dead path.
	keepalive := []string{"-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=30"}
	start := time.Now()
	h := startRaw(t, w.command(w.viaRelay(t, relay, pidfile, append([]string{"-o", proxy}, keepalive...)...)...))
	h.initialize()
	bound := backBound(t, time.Since(start))
	h.echo(1, 30*time.Second)

	if err := os.Remove(up); err != nil {
		t.Fatal(err)
	}
	relay.Cut()
	// Wait, bounded, until the ProxyCommand has failed twice.
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, _ := os.ReadFile(runs)
		if strings.Count(string(b), "run") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ProxyCommand ran %d times in 30 s; want a retry after each failure", strings.Count(string(b), "run"))
		}
		time.Sleep(20 * time.Millisecond) // polling a file the child writes; no event to wait on
	}
	if err := os.WriteFile(up, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The backoff has grown by now: allow for its longest wait too.
	h.echo(2, bound+10*time.Second)
	h.in.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("m2m-ssh after stdin EOF: %v", err)
	}
	if !strings.Contains(h.stderr.String(), "network is down") {
		t.Errorf("the log does not show the ProxyCommand's reason:\n%s", h.stderr)
	}
}
