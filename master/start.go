//go:build unix

package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/mux"
)

// readyWait bounds the wait for a master to connect and listen: its
// connect (ConnectTimeout for each hop, 15 s by default) and
// authentication fit within it, and a master stuck beyond it is killed
// rather than waited for.
const readyWait = 2 * time.Minute

// masterTermWait bounds the wait for a master given up on to end at TERM
// (it stops its connect and its programs) before it is killed.
const masterTermWait = 5 * time.Second

// liveWait bounds the probe of ControlPath for a live master: a connect
// and a hello on a local socket.
const liveWait = 5 * time.Second

// Descriptors the master finds open when it starts (after stdin, stdout
// and stderr, which are /dev/null).
const (
	// SpecFD carries the spec, then EOF.
	SpecFD = 3
	// ReadyFD is the readiness pipe: one message, then the master
	// closes it.
	ReadyFD = 4
)

// A Starter starts the master for one ControlPath when none is live.
type Starter struct {
	// Path is the ControlPath.
	Path string
	// Command is the master's command: the m2m-ssh binary with its
	// hidden subcommand. Start sets its stdio, extra files and session.
	Command *exec.Cmd
	// Spec is written to the master on SpecFD, then closed: what it
	// needs to connect, secrets included, which must not show on a
	// command line or in its environment.
	Spec []byte
	// LogPath is where the master logs, for messages that send the user
	// there.
	LogPath string
	Logger  *slog.Logger
}

// Start makes sure a master listens on s.Path: it returns at once when one
// does, else takes the lock, looks again (another m2m-ssh may have
// started one meanwhile), removes a stale socket and starts the master,
// and returns once the master is ready, or with the reason it is not: the
// error the master met connecting (a *StartError with its hint and its
// verdict), or why it could not be started. started says whether this
// call started it.
func (s *Starter) Start(ctx context.Context) (started bool, err error) {
	if live, err := s.live(ctx); live || err != nil {
		return false, err
	}
	l, err := takeLock(ctx, s.Path)
	if err != nil {
		return false, err
	}
	defer l.release()
	switch live, err := s.live(ctx); {
	case err != nil:
		return false, err
	case live:
		s.logger().Debug("another m2m-ssh started the master", "path", s.Path)
		return false, nil
	}
	if err := removeStale(s.Path); err != nil {
		return false, err
	}
	// A socket that cannot be made is found before the master logs in,
	// not after (the session would log in a second time, directly).
	if err := mux.CheckListen(s.Path); err != nil {
		return false, Unshared(err)
	}
	err = s.spawn(ctx)
	if err != nil {
		// One that no lock of ours holds back (ssh -M in a terminal)
		// may have taken the path first: riding it is as good.
		if live, _ := s.live(ctx); live {
			s.logger().Info("another master took the control path first; riding it", "path", s.Path, "err", err)
			return false, nil
		}
	}
	return err == nil, err
}

// live reports whether a master answers at s.Path. A socket that is not
// to be trusted is an error: no master is started over it.
func (s *Starter) live(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, liveWait)
	defer cancel()
	c, err := mux.Dial(ctx, s.Path)
	switch {
	case err == nil:
		c.Close()
		return true, nil
	case errors.Is(err, mux.ErrNoMaster):
		return false, nil
	}
	return false, err
}

// removeStale removes a socket nobody listens on (Dial said so, under the
// lock), as ssh does with ControlMaster auto; anything but a socket is
// left for Listen to refuse.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Unshared(fmt.Errorf("cannot remove the stale control socket %s: %w", path, err))
	}
	return nil
}

// spawn starts the master and waits for its readiness message.
func (s *Starter) spawn(ctx context.Context) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	specR, specW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer specR.Close()
	defer specW.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer readyR.Close()
	defer readyW.Close()

	cmd := s.Command
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{specR, readyW} // SpecFD, ReadyFD
	// A session of its own: no signal meant for the host's process group
	// (a terminal's ^C, a host killing its group) reaches it, and no
	// controlling terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Unshared(fmt.Errorf("cannot start the master process: %w", err))
	}
	exited := make(chan struct{})
	go func() {
		// Reaped while this process lives; after, init does.
		cmd.Wait()
		close(exited)
	}()
	specR.Close()
	readyW.Close()
	// A master that cannot read its spec fails and says so on the
	// readiness pipe; the write's own error adds nothing.
	go func() {
		specW.Write(s.Spec)
		specW.Close()
	}()

	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { readyR.Close() })
	defer stop()
	m, err := readReady(readyR)
	switch {
	case ctx.Err() != nil:
		stopMaster(cmd, exited)
		if context.Cause(ctx) == context.DeadlineExceeded {
			return &StartError{Log: s.LogPath, Err: fmt.Sprintf("the master was not ready after %s", readyWait),
				HintText: "it may be waiting for a server that does not answer", Local: true}
		}
		return context.Cause(ctx)
	case errors.Is(err, errNotReady):
		<-exited
		return &StartError{Log: s.LogPath, Err: fmt.Sprintf("the master process ended before it was ready (%s)", cmd.ProcessState), Local: true}
	case err != nil:
		cmd.Process.Kill()
		return &StartError{Log: s.LogPath, Err: err.Error(), Local: true}
	case m.Error != "":
		return &StartError{Log: s.LogPath, Err: m.Error, HintText: m.Hint, Lasting: m.Permanent, Local: m.Local}
	}
	s.logger().Info("started the shared connection's master", "path", s.Path, "pid", m.PID, "log", s.LogPath)
	return nil
}

// stopMaster ends a master given up on: TERM first, which ends its
// connect and what that started (an askpass question in a process group
// of its own, which a KILL of the master would leave on the screen, its
// answer going nowhere), then KILL if it has not ended within
// masterTermWait.
func stopMaster(cmd *exec.Cmd, exited <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(masterTermWait)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		cmd.Process.Kill()
	}
}

func (s *Starter) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return s.Logger
}

// A StartError is a master that did not come up: the error it met, in the
// words m2m-ssh would have used connecting directly, with its hint and
// whether waiting can change it.
type StartError struct {
	Err      string
	HintText string
	Lasting  bool
	// Local is a failure of the master itself (its socket, its log, its
	// process), not of reaching the server.
	Local bool
	Log   string // the master's log file
}

func (e *StartError) Error() string { return e.Err }

func (e *StartError) Hint() string {
	switch {
	case e.HintText != "" && e.Log != "":
		return e.HintText + "; the master's log is " + e.Log
	case e.Log != "":
		return "see the master's log, " + e.Log
	}
	return e.HintText
}

func (e *StartError) Permanent() bool { return e.Lasting }

func (e *StartError) NotShared() bool { return e.Local }
