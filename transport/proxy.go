package transport

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
	"github.com/machine-to-machine/m2m-ssh/internal/stderrlines"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// proxyShell runs ProxyCommand, as ssh runs it with "exec" in front so
// that the shell becomes the command.
var proxyShell = "/bin/sh"

// proxyStopWait is how long a ProxyCommand gets to end after SIGTERM
// before it is killed.
const proxyStopWait = 2 * time.Second

// stderrDrain bounds the wait, after a ProxyCommand exits, for the rest of
// its stderr: a process it started may hold the pipe open.
const stderrDrain = 250 * time.Millisecond

// proxyConn is a running ProxyCommand, its stdin and stdout used as the
// connection to the target.
type proxyConn struct {
	command string
	cmd     *exec.Cmd
	in      *os.File // our end of its stdin
	out     *os.File // our end of its stdout
	// done is closed when the command has exited and its stderr is read
	// (or stderrDrain has passed), so exitErr and lastLine are final.
	done chan struct{}

	mu       sync.Mutex
	exitErr  error
	lastLine string // its last line on stderr

	closeOnce sync.Once
}

// startProxy starts t's ProxyCommand through sh -c in a process group of
// its own, logging its stderr line by line.
func startProxy(t *sshcfg.Target, log *slog.Logger) (*proxyConn, error) {
	command, err := t.ProxyCommandLine()
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	cmd := exec.Command(proxyShell, "-c", "exec "+command)
	cmd.Env = secretenv.Environ()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	ownGroup(cmd)
	err = cmd.Start()
	// The child holds its ends now; ours would keep EOF from coming.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, &ProxyError{Command: command, Err: err}
	}
	pc := &proxyConn{command: command, cmd: cmd, in: inW, out: outR, done: make(chan struct{})}
	log.Debug("started ProxyCommand", "target", t.Alias, "command", command, "pid", cmd.Process.Pid)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		pc.logStderr(errR, t.Alias, log)
	}()
	go func() {
		err := cmd.Wait()
		// Its last words are in the pipe: let the logger take them,
		// unless something it started keeps stderr open.
		drain := time.NewTimer(stderrDrain)
		select {
		case <-logged:
		case <-drain.C:
		}
		drain.Stop()
		pc.mu.Lock()
		pc.exitErr = err
		pc.mu.Unlock()
		close(pc.done)
	}()
	return pc, nil
}

// logStderr logs the command's stderr, line by line, cut and rate-bounded
// as stderrlines.Lines does, and keeps its last line (so cut too) for errors.
func (pc *proxyConn) logStderr(r *os.File, alias string, log *slog.Logger) {
	defer r.Close()
	stderrlines.Lines{
		Line: func(text []byte, cut int64) {
			if len(text) == 0 && cut == 0 {
				return
			}
			line := string(text)
			if cut > 0 {
				line += fmt.Sprintf(" [cut: %d more bytes]", cut)
			}
			pc.mu.Lock()
			pc.lastLine = line
			pc.mu.Unlock()
			log.Info("ProxyCommand: "+line, "target", alias)
		},
		Dropped: func(n int) {
			log.Warn("lines of the ProxyCommand's stderr dropped", "target", alias, "dropped", n, "limit", fmt.Sprintf("%d a second", stderrlines.Rate))
		},
	}.Read(r)
}

func (pc *proxyConn) Read(p []byte) (int, error)  { return pc.out.Read(p) }
func (pc *proxyConn) Write(p []byte) (int, error) { return pc.in.Write(p) }

// Close ends the command and what it started: EOF on its stdin, SIGTERM
// to its process group, and SIGKILL if it lingers.
func (pc *proxyConn) Close() error {
	pc.closeOnce.Do(func() {
		pc.in.Close()
		pc.out.Close()
		signalGroup(pc.cmd, false)
		select {
		case <-pc.done:
		case <-time.After(proxyStopWait):
			signalGroup(pc.cmd, true)
			<-pc.done
		}
		// Whatever it started that outlived it goes too.
		signalGroup(pc.cmd, true)
	})
	return nil
}

// explain turns a handshake failure into the command's own failure when
// the command has ended: its status and last words say more than EOF.
func (pc *proxyConn) explain(err error) error {
	select {
	case <-pc.done:
	case <-time.After(500 * time.Millisecond):
		return err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	status := -1
	var ee *exec.ExitError
	if errors.As(pc.exitErr, &ee) {
		status = ee.ExitCode()
	} else if pc.exitErr == nil {
		status = 0
	}
	return &ProxyError{Command: pc.command, Status: status, Stderr: pc.lastLine, Err: err}
}

func (pc *proxyConn) LocalAddr() net.Addr  { return proxyAddr(pc.command) }
func (pc *proxyConn) RemoteAddr() net.Addr { return proxyAddr(pc.command) }

func (pc *proxyConn) SetDeadline(t time.Time) error {
	return errors.Join(pc.in.SetDeadline(t), pc.out.SetDeadline(t))
}
func (pc *proxyConn) SetReadDeadline(t time.Time) error  { return pc.out.SetReadDeadline(t) }
func (pc *proxyConn) SetWriteDeadline(t time.Time) error { return pc.in.SetWriteDeadline(t) }

type proxyAddr string

func (proxyAddr) Network() string  { return "proxy" }
func (a proxyAddr) String() string { return string(a) }

// ProxyError is a ProxyCommand that could not start, or ended before the
// SSH handshake completed.
type ProxyError struct {
	Command string
	Status  int    // exit status, -1 when killed; 0 also when it did not start
	Stderr  string // its last line on stderr
	Err     error
}

func (e *ProxyError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("ProxyCommand exited with status %d: %s", e.Status, e.Stderr)
	}
	if errors.Is(e.Err, io.EOF) || e.Status != 0 {
		return fmt.Sprintf("ProxyCommand exited with status %d", e.Status)
	}
	return fmt.Sprintf("ProxyCommand: %v", e.Err)
}

func (e *ProxyError) Unwrap() error { return e.Err }

func (e *ProxyError) Hint() string {
	return fmt.Sprintf("run the ProxyCommand by hand to see why it fails: %s", e.Command)
}
