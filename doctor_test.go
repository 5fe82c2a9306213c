package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// lateStderr is a remote program that ends without answering, and whose
// stderr line is delivered only once the client has given up on it and
// sends EOF: on a busy machine x/crypto's separate stream buffers may hand
// stderr over that late.
type lateStderr struct {
	late   chan struct{}
	once   sync.Once
	stderr io.Reader
}

func newLateStderr(line string) *lateStderr {
	l := &lateStderr{late: make(chan struct{})}
	pr, pw := io.Pipe()
	go func() {
		<-l.late
		io.WriteString(pw, line)
		pw.Close()
	}()
	l.stderr = pr
	return l
}

func (l *lateStderr) Read([]byte) (int, error)    { return 0, io.EOF }
func (l *lateStderr) Write(p []byte) (int, error) { return len(p), nil }
func (l *lateStderr) CloseWrite() error {
	l.once.Do(func() { close(l.late) })
	return nil
}
func (l *lateStderr) Stderr() io.Reader   { return l.stderr }
func (l *lateStderr) Wait() error         { return nil }
func (l *lateStderr) Signal(string) error { return nil }
func (l *lateStderr) Close() error        { return nil }

// TestDoctorInitializeWaitsForStderr checks that a failed initialize
// reports the stderr line that arrives after the remote's stdout ended.
// Whether the line is late enough to be missed without the wait depends on
// scheduling, so the case runs many times: without the wait about one run
// in fifty misses it, and one in four under the race detector.
func TestDoctorInitializeWaitsForStderr(t *testing.T) {
	for i := range 50 {
		var out bytes.Buffer
		d := &doctor{out: &out}
		d.initialize(context.Background(), &sshcfg.Target{HostName: "127.0.0.1"}, newLateStderr("not an MCP server\n"), transport.Program{Command: "server"})
		if !d.failed {
			t.Fatalf("run %d: initialize passed against a remote that never answered:\n%s", i, out.String())
		}
		if !strings.Contains(out.String(), "\n    remote stderr: not an MCP server\n") {
			t.Fatalf("run %d: the report lacks the remote's stderr line:\n%s", i, out.String())
		}
	}
}

// shellRemote is a login shell given JSON-RPC lines: its stdout stays
// silent, its stderr says what the shell thought of the first line.
type shellRemote struct {
	stdout *io.PipeReader
	stderr io.Reader
}

func (r *shellRemote) Read(p []byte) (int, error)  { return r.stdout.Read(p) }
func (r *shellRemote) Write(p []byte) (int, error) { return len(p), nil }
func (r *shellRemote) CloseWrite() error           { return nil }
func (r *shellRemote) Stderr() io.Reader           { return r.stderr }
func (r *shellRemote) Wait() error                 { return nil }
func (r *shellRemote) Signal(string) error         { return nil }
func (r *shellRemote) Close() error                { return r.stdout.Close() }

// TestDoctorShellSaysNoCommand checks that a shell that read the
// initialize line as a command is reported at once, with what to do,
// rather than after mcpTimeout; and that the same stderr from a program
// that was named is not taken for it.
func TestDoctorShellSaysNoCommand(t *testing.T) {
	for _, c := range []struct {
		name    string
		program transport.Program
		stderr  string
		want    string
	}{
		{"bash", transport.Program{}, "bash: line 1: {\"jsonrpc\":\"2.0\",...}: command not found\n", "no remote command was given: pass `-- COMMAND` or set RemoteCommand"},
		{"dash", transport.Program{}, "sh: 1: {jsonrpc:2.0,id:1}: not found\n", "no remote command was given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			r := &shellRemote{stdout: pr, stderr: strings.NewReader(c.stderr)}
			var out bytes.Buffer
			d := &doctor{out: &out}
			sshtest.Within(t, mcpTimeout/2, func() bool {
				d.initialize(context.Background(), &sshcfg.Target{Alias: "box", HostName: "127.0.0.1"}, r, c.program)
				return true
			})
			if !d.failed || !strings.Contains(out.String(), c.want) || !strings.Contains(out.String(), "hint: the login shell on box read the JSON-RPC lines as commands") {
				t.Errorf("report:\n%s\nwant %q and the hint", out.String(), c.want)
			}
		})
	}
}
