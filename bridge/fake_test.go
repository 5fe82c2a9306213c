package bridge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/transport"
)

// pipeRemote is a Remote in memory: the test plays the remote program on
// the other ends of its pipes, with no SSH between.
type pipeRemote struct {
	stdin   *io.PipeReader // what the bridge writes, for the test
	stdinW  *io.PipeWriter
	stdout  *io.PipeWriter // what the test writes, for the bridge
	stdoutR *io.PipeReader
	once    sync.Once
	closed  chan struct{}
	cutOnce sync.Once
	gone    chan struct{} // closed by cut
}

func newPipeRemote() *pipeRemote {
	f := &pipeRemote{closed: make(chan struct{}), gone: make(chan struct{})}
	f.stdin, f.stdinW = io.Pipe()
	f.stdoutR, f.stdout = io.Pipe()
	return f
}

var errPipeClosed = errors.New("fake remote closed")

func (f *pipeRemote) Read(p []byte) (int, error)  { return f.stdoutR.Read(p) }
func (f *pipeRemote) Write(p []byte) (int, error) { return f.stdinW.Write(p) }
func (f *pipeRemote) CloseWrite() error           { return f.stdinW.Close() }
func (f *pipeRemote) Stderr() io.Reader           { return strings.NewReader("") }

// Wait never sees an exit status: the fake's end is always a lost
// connection.
func (f *pipeRemote) Wait() error {
	select {
	case <-f.closed:
	case <-f.gone:
	}
	return transport.ErrNoExitStatus
}

// Signal is refused, as a server that does not honour signals refuses it.
func (f *pipeRemote) Signal(sig string) error { return &transport.SignalError{Signal: sig} }

func (f *pipeRemote) Close() error {
	f.once.Do(func() {
		close(f.closed)
		f.stdoutR.CloseWithError(errPipeClosed)
		f.stdinW.CloseWithError(errPipeClosed)
		f.stdin.CloseWithError(errPipeClosed)
	})
	return nil
}

// cut loses the connection: the bridge reads an error, not EOF.
func (f *pipeRemote) cut() {
	f.cutOnce.Do(func() { close(f.gone) })
	f.stdout.CloseWithError(errPipeClosed)
}

// lines returns a channel of the lines the bridge writes to the remote.
func (f *pipeRemote) lines() <-chan string {
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

// fakeBridge is a Bridge over one fake remote that does not reconnect.
func fakeBridge(remote *pipeRemote) *Bridge {
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
