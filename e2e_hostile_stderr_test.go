//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// The bounds of remote stderr in the log, as bridge/stderr.go sets them:
// the e2e tests check what reaches the log against them.
const (
	e2eMaxStderrLine = 2048
	e2eStderrRate    = 100 // lines a second
	e2eStderrBurst   = 200
)

// exitedHost is a raw host whose m2m-ssh has its stderr set by the test,
// and whose exit the test can wait for.
type exitedHost struct {
	*rawHost
	exited chan struct{}
	state  *os.ProcessState
}

// startWithStderr starts cmd as startRaw does, with stderr as its stderr.
func startWithStderr(t *testing.T, cmd *exec.Cmd, stderr io.Writer) *exitedHost {
	t.Helper()
	h := &exitedHost{
		rawHost: &rawHost{t: t, cmd: cmd, out: make(chan map[string]any, 64), stderr: &sshtest.Buffer{}},
		exited:  make(chan struct{}),
	}
	cmd.Stderr = stderr
	var err error
	if h.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdoutW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdoutW.Close()
	go func() {
		defer stdoutR.Close()
		readFrames(stdoutR, h.out)
	}()
	go func() {
		defer close(h.exited)
		cmd.Wait()
		h.state = cmd.ProcessState
	}()
	t.Cleanup(func() {
		h.in.Close()
		cmd.Process.Kill()
		<-h.exited
	})
	return h
}

// waitExit waits up to within for m2m-ssh to exit.
func (h *exitedHost) waitExit(within time.Duration) *os.ProcessState {
	h.t.Helper()
	select {
	case <-h.exited:
		return h.state
	case <-time.After(within):
		h.t.Fatalf("m2m-ssh did not exit within %s", within)
		return nil
	}
}

// logTail is a log the test reads: its size, and its first and last
// bytes, so that a log that grows without bound does not fill the test.
type logTail struct {
	mu      sync.Mutex
	total   int64
	head    []byte
	tail    []byte
	changed chan struct{}
}

const logTailKeep = 256 << 10

func newLogTail() *logTail { return &logTail{changed: make(chan struct{})} }

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total += int64(len(p))
	if n := min(len(p), logTailKeep-len(l.head)); n > 0 {
		l.head = append(l.head, p[:n]...)
	}
	l.tail = append(l.tail, p...)
	if len(l.tail) > logTailKeep {
		l.tail = append(l.tail[:0], l.tail[len(l.tail)-logTailKeep:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total <= logTailKeep {
		return string(l.head)
	}
	return fmt.Sprintf("%s\n[... %d bytes ...]\n%s", l.head, l.total, l.tail)
}

func (l *logTail) size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// waitFor waits up to within for want to appear in the log.
func (l *logTail) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		found := bytes.Contains(l.head, []byte(want)) || bytes.Contains(l.tail, []byte(want))
		changed := l.changed
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%q not in the log within %s; log:\n%.4000s", want, within, l.String())
		}
	}
}

// requests sends n tools/list requests from id 1 and checks each is
// answered within each.
func requests(h *rawHost, n int, each time.Duration) {
	h.t.Helper()
	for id := 1; id <= n; id++ {
		h.send(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, id)
		if m := h.recv(each); m["id"] != float64(id) || m["result"] == nil {
			h.t.Fatalf("request %d answered %v", id, m)
		}
	}
}

// A host that never reads m2m-ssh's stderr, behind a remote that floods
// its own: the session goes on, and SIGTERM ends it at once, as it ends
// ssh -T.
func TestHostileStderrUnread(t *testing.T) {
	w := newWorld(t)
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer wr.Close()
	h := startWithStderr(t, w.command(append([]string{"--log-level", "DEBUG"}, w.hostile("stderr-flood")...)...), wr)
	h.initialize()
	requests(h.rawHost, 50, 10*time.Second)
	start := time.Now()
	h.cmd.Process.Signal(syscall.SIGTERM)
	h.waitExit(exitBound)
	t.Logf("exited %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// A host that closed m2m-ssh's stderr before starting it: the log is lost,
// the session is not, and the exit is the remote's, not SIGPIPE.
func TestHostileStderrClosed(t *testing.T) {
	w := newWorld(t)
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer wr.Close()
	h := startWithStderr(t, w.command(append([]string{"--log-level", "DEBUG"}, w.hostile("stderr-flood")...)...), wr)
	h.initialize()
	requests(h.rawHost, 10, 10*time.Second)
	h.in.Close()
	st := h.waitExit(10 * time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("m2m-ssh was killed by %v", ws.Signal())
	}
	if st.ExitCode() != 0 {
		t.Fatalf("exit status %d, want the remote's 0", st.ExitCode())
	}
}

// One endless stderr line from the remote is cut in the log, never held:
// m2m-ssh's memory stays small and the log says how much was cut.
func TestHostileStderrLongLine(t *testing.T) {
	const size = 128 << 20
	const maxRSS = 64 << 20
	w := newWorld(t)
	log := newLogTail()
	h := startWithStderr(t, w.command(w.hostile("stderr-line", fmt.Sprint(size))...), log)
	h.initialize()
	log.waitFor(t, "m2m-ssh: remote: stderr-line done", 120*time.Second)
	requests(h.rawHost, 3, 10*time.Second)
	sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, maxRSS)
	t.Logf("log %d bytes", log.size())
	want := fmt.Sprintf("m2m-ssh: remote: %s [cut: %d more bytes]\n", strings.Repeat("x", e2eMaxStderrLine), size-e2eMaxStderrLine)
	if !strings.Contains(log.String(), want) {
		t.Errorf("the log has no cut line %.60q...%q:\n%.3000s", want, want[len(want)-30:], log.String())
	}
	if log.size() > 1<<20 {
		t.Errorf("the log took %d bytes of a %d-byte line", log.size(), size)
	}
}

// --log-file under a stderr flood grows by the per-second bound, not by
// what the remote writes.
func TestHostileStderrLogFile(t *testing.T) {
	w := newWorld(t)
	logFile := filepath.Join(w.dir, "m2m-ssh.log")
	var stderr strings.Builder
	start := time.Now()
	h := startWithStderr(t, w.command(append([]string{"--log-file", logFile}, w.hostile("stderr-flood")...)...), &stderr)
	h.initialize()
	requests(h.rawHost, 50, 10*time.Second)
	h.in.Close()
	h.waitExit(10 * time.Second)
	took := time.Since(start)
	fi, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// Each line is at most the remote's 1000 bytes and the prefix; the
	// slack is m2m-ssh's own lines.
	lines := e2eStderrBurst + e2eStderrRate*(int64(took/time.Second)+1)
	bound := lines*(1000+64) + 64<<10
	t.Logf("%s: log file %d bytes, bound %d", took.Round(time.Millisecond), fi.Size(), bound)
	if fi.Size() > bound {
		t.Fatalf("log file grew to %d bytes in %s, want at most %d", fi.Size(), took, bound)
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("m2m-ssh: remote: eeee")) || !bytes.Contains(data, []byte("lines of the remote's stderr dropped")) {
		t.Fatalf("the log file has no remote lines or no count of the dropped ones:\n%.3000s", data)
	}
}

// A ProxyCommand that writes 300 MB to stderr without a newline, then
// proxies or fails: m2m-ssh's memory stays small, and its error names the
// cut line.
func TestHostileStderrProxyCommand(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Skip("no nc")
	}
	const maxRSS = 64 << 20
	const flood = `head -c 300000000 /dev/zero | tr '\0' x >&2; `
	for _, c := range []struct {
		name, then string
		fails      bool
	}{
		{"proxies", "exec nc %h %p", false},
		{"fails", "exit 3", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			log := newLogTail()
			h := startWithStderr(t, w.command("-o", "ProxyCommand="+flood+c.then, "buildbox", "--", bins.hostile, "polite"), log)
			h.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
			m := h.recv(120 * time.Second)
			sshtest.CheckPeakRSS(t, h.cmd.Process.Pid, maxRSS)
			t.Logf("log %d bytes", log.size())
			e, _ := m["error"].(map[string]any)
			if !c.fails {
				if m["result"] == nil {
					t.Fatalf("initialize = %v", m)
				}
				return
			}
			msg, _ := e["message"].(string)
			if !strings.Contains(msg, "ProxyCommand exited with status 3: xxxx") || !strings.Contains(msg, "[cut: ") || len(msg) > e2eMaxStderrLine+1024 {
				t.Fatalf("initialize = %.300v (%d bytes), want the ProxyCommand's failure with its cut line", m, len(msg))
			}
			log.waitFor(t, "ProxyCommand: xxxx", 10*time.Second)
			if log.size() > 1<<20 {
				t.Errorf("the log took %d bytes of a 300 MB line", log.size())
			}
		})
	}
}

// With SIGPIPE handled for stderr's sake, a host that closed m2m-ssh's
// stdout still ends the session as a host that stopped reading: logged,
// status 255, not a SIGPIPE death and not a session that runs on.
func TestHostileStdoutClosed(t *testing.T) {
	w := newWorld(t)
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	defer wr.Close()
	cmd := w.command(w.hostile("polite")...)
	log := newLogTail()
	cmd.Stdout, cmd.Stderr = wr, log
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	fmt.Fprintln(in, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("m2m-ssh did not exit within 30 s of answering into a closed stdout")
	}
	st := cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("m2m-ssh was killed by %v", ws.Signal())
	}
	if st.ExitCode() != 255 || !strings.Contains(log.String(), "the host stopped reading") {
		t.Fatalf("exit status %d, log:\n%s\nwant 255 and the host stopped reading", st.ExitCode(), log)
	}
}

// m2m-ssh handles SIGPIPE without ignoring it: the programs it starts
// (here a ProxyCommand) get the default, which ends them when their
// reader goes, as they expect.
func TestProxyCommandKeepsSIGPIPE(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Skip("no nc")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	w := newWorld(t)
	log := newLogTail()
	h := startWithStderr(t, w.command("-o", "ProxyCommand=grep SigIgn /proc/self/status | cat >&2; exec nc %h %p", "buildbox", "--", bins.hostile, "polite"), log)
	h.initialize()
	log.waitFor(t, "SigIgn:", 10*time.Second)
	s := log.String()
	i := strings.Index(s, "SigIgn:")
	hex := strings.TrimLeft(s[i+len("SigIgn:"):], `\t `)
	var mask uint64
	if _, err := fmt.Sscanf(hex, "%16x", &mask); err != nil {
		t.Fatalf("SigIgn of the ProxyCommand: %v in %.200q", err, s[i:])
	}
	if mask&(1<<(syscall.SIGPIPE-1)) != 0 {
		t.Fatalf("the ProxyCommand runs with SIGPIPE ignored (SigIgn %016x)", mask)
	}
}

// A FIFO nobody reads as --log-file is refused at once: opening it for
// writing would wait for a reader forever, and the host with it.
func TestLogFileFIFO(t *testing.T) {
	w := newWorld(t)
	fifo := filepath.Join(w.dir, "log.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	cmd := w.command(append([]string{"--log-file", fifo}, w.hostile("polite")...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}` + "\n")
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("m2m-ssh did not exit within 10 s with a FIFO nobody reads as --log-file")
	}
	if !strings.Contains(stderr.String(), "m2m-ssh: error: cannot open --log-file: "+fifo+" is a FIFO nobody reads") {
		t.Fatalf("stderr %q, want the log file refused", stderr.String())
	}
}
