package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/transport"
)

// memRemote is a Remote in memory, in the manner of x/crypto's
// mempipe_test.go: the remote program is played on the other ends of its
// pipes, by the test itself (stdin, stdout, lines) or by serve, with no SSH
// between. The fields before the pipes are the faults the test chooses:
// what ends the program, whether the server refuses signals, whether the
// program answers at all. It records what the bridge asks of it, in order.
type memRemote struct {
	endsOn map[string]bool // "EOF", "TERM", "KILL": what ends the program
	refuse bool            // the server refuses every signal
	// endsLate: TERM ends the program, and the server says so only
	// behind its refusal of the next signal, as OpenSSH does for a
	// program that has just ended (it has no pid for it any more).
	endsLate bool
	serve    bool // the program answers every request but "hang" with {}

	stdin  *io.PipeReader // what the bridge writes, for the program
	stdout *io.PipeWriter // what the program writes, for the bridge

	stdinW, stderrW  *io.PipeWriter
	stdoutR, stderrR *io.PipeReader
	mu               sync.Mutex
	calls            []string
	events           chan string   // each call, as it is made
	writing          chan struct{} // receives when a Write starts
	endOnce, cutOnce sync.Once
	exited           chan struct{}
	status           error
	closeOnce        sync.Once
	closed, gone     chan struct{} // gone: closed by cut
}

// newMemRemote starts f, whose faults are set.
func newMemRemote(f *memRemote) *memRemote {
	f.stdin, f.stdinW = io.Pipe()
	f.stdoutR, f.stdout = io.Pipe()
	f.stderrR, f.stderrW = io.Pipe()
	f.events = make(chan string, 64)
	f.writing = make(chan struct{}, 64)
	f.exited = make(chan struct{})
	f.closed = make(chan struct{})
	f.gone = make(chan struct{})
	if f.serve {
		go f.answer()
	}
	return f
}

// playedRemote is a memRemote the test plays by hand, on a server that
// refuses signals.
func playedRemote() *memRemote { return newMemRemote(&memRemote{refuse: true}) }

var errMemClosed = errors.New("memory remote closed")

// answer answers every request but "hang" with an empty result; at EOF the
// program ends if EOF ends it, and otherwise keeps running.
func (f *memRemote) answer() {
	r := bufio.NewReader(f.stdin)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if f.endsOn["EOF"] {
				f.end(nil)
			}
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(line, &m) != nil || m.ID == nil || m.Method == "hang" {
			continue
		}
		fmt.Fprintf(f.stdout, `{"jsonrpc":"2.0","id":%s,"result":{}}`+"\n", m.ID)
	}
}

func (f *memRemote) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	select {
	case f.events <- call:
	default: // nobody awaits calls this many
	}
}

func (f *memRemote) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// end ends the program with status: its output closes, and Wait returns.
func (f *memRemote) end(status error) {
	f.endOnce.Do(func() {
		f.status = status
		f.stdout.Close()
		f.stderrW.Close()
		close(f.exited)
	})
}

// cut loses the connection: the bridge reads an error, not EOF, and no
// exit status comes.
func (f *memRemote) cut() {
	f.cutOnce.Do(func() { close(f.gone) })
	f.stdout.CloseWithError(errMemClosed)
}

func (f *memRemote) Read(p []byte) (int, error) { return f.stdoutR.Read(p) }
func (f *memRemote) Write(p []byte) (int, error) {
	select {
	case f.writing <- struct{}{}:
	default:
	}
	return f.stdinW.Write(p)
}
func (f *memRemote) Stderr() io.Reader { return f.stderrR }

func (f *memRemote) CloseWrite() error {
	f.record("eof")
	return f.stdinW.Close()
}

func (f *memRemote) Signal(sig string) error {
	f.record("signal " + sig)
	if f.endsLate {
		if sig == "TERM" {
			return nil
		}
		// The channel's close that ends Wait comes behind the
		// refusal, one trip of the reader later.
		time.AfterFunc(lateReport, func() { f.end(&transport.ExitError{Status: 128 + 15, Signal: "TERM"}) })
		return &transport.SignalError{Signal: sig}
	}
	if f.refuse {
		return &transport.SignalError{Signal: sig}
	}
	if f.endsOn[sig] {
		f.end(&transport.ExitError{Status: 128 + signalNumbers[sig], Signal: sig})
	}
	return nil
}

// lateReport is how far behind a refusal an endsLate program's exit
// comes: what the bridge takes of it does not depend on how far, only
// whether it comes within the kill grace.
const lateReport = 20 * time.Millisecond

// signalNumbers are the numbers of the signals the remote is sent.
var signalNumbers = map[string]int{"TERM": 15, "KILL": 9}

// Wait returns the status the program ended with, or, for a session that
// was closed or cut, no exit status.
func (f *memRemote) Wait() error {
	select {
	case <-f.exited:
		return f.status
	case <-f.closed:
	case <-f.gone:
	}
	return transport.ErrNoExitStatus
}

func (f *memRemote) Close() error {
	f.record("close")
	f.closeOnce.Do(func() {
		close(f.closed)
		f.stdin.CloseWithError(errMemClosed)
		f.stdinW.CloseWithError(errMemClosed)
		f.stdoutR.CloseWithError(errMemClosed)
		f.stderrW.Close()
	})
	return nil
}

// lines returns a channel of the lines the bridge writes to the remote.
func (f *memRemote) lines() <-chan string {
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(f.stdin)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// awaitCall waits for the remote to be asked call.
func (f *memRemote) awaitCall(t *testing.T, call string) {
	t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		select {
		case c := <-f.events:
			if c == call {
				return
			}
		case <-timer.C:
			t.Fatalf("the bridge did not %s; it did %q", call, f.recorded())
		}
	}
}

// memBridge is a Bridge over one memory remote that does not reconnect.
func memBridge(remote *memRemote) *Bridge {
	once := false
	return &Bridge{
		Name: "fake", Retries: -1, FailGrace: 1, ExitWait: bound,
		Connect: func(context.Context) (transport.Remote, error) {
			if once {
				return nil, errors.New("fake: one connection only")
			}
			once = true
			return remote, nil
		},
	}
}

// startPlayed starts a Bridge of memBridge's, changed by set when it is not
// nil, over a remote the test plays by hand; in has the lines the bridge
// writes to the remote.
func startPlayed(t *testing.T, set func(*Bridge)) (h *host, remote *memRemote, in <-chan string) {
	t.Helper()
	remote = playedRemote()
	b := memBridge(remote)
	if set != nil {
		set(b)
	}
	return startBridge(t, b), remote, remote.lines()
}

// recvFrame is the next frame the bridge writes to the remote, decoded.
func recvFrame(t *testing.T, ch <-chan string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(recvLine(t, ch)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func recvLine(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("the bridge closed the remote's stdin")
		}
		return l
	case <-time.After(bound):
		t.Fatal("nothing reached the remote")
	}
	return ""
}
