package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/machine-to-machine/m2m-ssh/mux"
)

// sharedRemote is a session a master runs for m2m-ssh: the program's
// stdin, stdout and stderr are pipes whose far ends the master holds (it
// was passed them over the control connection), and the control
// connection carries its exit status.
type sharedRemote struct {
	path    string // the control path, for errors
	session *mux.Session
	stdin   *os.File // our write end
	stdout  *os.File // our read end
	stderr  *os.File // our read end

	waitOnce sync.Once
	exit     error
	closed   sync.Once
}

// openShared asks the master on c for a session running p, and hands it
// the far ends of three pipes. The far ends are closed here once the
// master has its copies, so that the master's are the only ones: its
// exit or its closing of the session is then an EOF on our ends.
func openShared(ctx context.Context, c *mux.Client, req mux.SessionRequest) (*sharedRemote, error) {
	var ends [6]*os.File // stdin r, w; stdout r, w; stderr r, w
	closeAll := func() {
		for _, f := range ends {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := 0; i < 6; i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("making the session's pipes: %w", err)
		}
		ends[i], ends[i+1] = r, w
	}
	s, err := c.NewSession(ctx, req, ends[0], ends[3], ends[5])
	ends[0].Close()
	ends[3].Close()
	ends[5].Close()
	if err != nil {
		ends[1].Close()
		ends[2].Close()
		ends[4].Close()
		return nil, err
	}
	return &sharedRemote{path: c.Path(), session: s, stdin: ends[1], stdout: ends[2], stderr: ends[4]}, nil
}

func (r *sharedRemote) Read(p []byte) (int, error)  { return r.stdout.Read(p) }
func (r *sharedRemote) Write(p []byte) (int, error) { return r.stdin.Write(p) }

// CloseWrite closes the only write end of the program's stdin: the master
// reads EOF and sends it on the channel.
func (r *sharedRemote) CloseWrite() error { return r.stdin.Close() }

func (r *sharedRemote) Stderr() io.Reader { return r.stderr }

// Wait is the session's exit status. The master sends none when the
// program was killed by a signal, and none when it goes away itself:
// both are ErrNoExitStatus, the second with a *MasterGoneError, told
// apart by asking whether the master is still there.
func (r *sharedRemote) Wait() error {
	r.waitOnce.Do(func() {
		status, err := r.session.Wait()
		switch {
		case errors.Is(err, mux.ErrMasterGone) && masterAlive(r.path):
			r.exit = fmt.Errorf("%w: the master is there but sent none (OpenSSH's master sends none for a program killed by a signal)", ErrNoExitStatus)
		case errors.Is(err, mux.ErrMasterGone):
			r.exit = fmt.Errorf("%w: %w", ErrNoExitStatus, &MasterGoneError{Path: r.path, Err: err})
		case err != nil:
			r.exit = fmt.Errorf("%w: %w", ErrNoExitStatus, err)
		case status != 0:
			r.exit = &ExitError{Status: status}
		}
	})
	return r.exit
}

// Signal cannot be delivered: OpenSSH's connection-sharing protocol has
// no message for it ("XXX signals via mux request" in PROTOCOL.mux), and
// `ssh -S` itself only closes its session when it is signalled. The
// caller then closes the session, as `ssh -S` would.
func (r *sharedRemote) Signal(sig string) error {
	return &SignalError{Signal: sig, Shared: true}
}

// Close closes the control connection, which makes the master close the
// session's channel, and our ends of the pipes, which ends any read or
// write of them.
func (r *sharedRemote) Close() error {
	var err error
	r.closed.Do(func() {
		err = r.session.Close()
		r.stdin.Close()
		r.stdout.Close()
		r.stderr.Close()
	})
	return err
}

// masterAlive is whether a master answers at path, within MasterDialTimeout.
func masterAlive(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), MasterDialTimeout)
	defer cancel()
	c, err := mux.Dial(ctx, path)
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Check(ctx)
	return err == nil
}
