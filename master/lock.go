//go:build unix

package master

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockWait bounds the wait for another m2m-ssh that is starting the same
// master: it holds the lock for at most its own readyWait, so waiting
// longer than that means it is stuck, not slow.
const lockWait = readyWait + 10*time.Second

// lockSuffix names the lock file beside ControlPath.
//
// Starts are serialized with flock rather than OpenSSH's race to link the
// socket into place (which mux.Listen still does, so that two masters can
// never both own it): that race is decided only after each racer has
// connected and authenticated, and the point of a master is one
// connection and one authentication, one touch of a security key, however
// many m2m-ssh an MCP host starts at once. The lock is taken before
// dialing. The kernel drops a flock when its holder dies, so a crashed
// starter leaves nothing stale behind.
const lockSuffix = ".lock"

// lock is a held flock on the file beside a ControlPath.
type lock struct{ f *os.File }

// takeLock opens (creating it 0600) the lock file for controlPath and
// waits for its exclusive flock, at most lockWait and no longer than ctx.
func takeLock(ctx context.Context, controlPath string) (*lock, error) {
	path := controlPath + lockSuffix
	// O_NOFOLLOW: a symlink planted in place of the lock file must not
	// make m2m-ssh create or lock a file elsewhere.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, &LockError{Path: path, Err: err}
	}
	if err := ownedRegular(f); err != nil {
		f.Close()
		return nil, &LockError{Path: path, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, &LockError{Path: path, Err: err}
		}
		return &lock{f: f}, nil
	case <-ctx.Done():
		// flock cannot be interrupted: the goroutine keeps waiting,
		// and gives the lock up as soon as it has it.
		go func() {
			<-got
			f.Close()
		}()
		if context.Cause(ctx) == context.DeadlineExceeded {
			return nil, &LockError{Path: path, Held: true, Err: fmt.Errorf("another m2m-ssh has held it for over %s", lockWait)}
		}
		return nil, context.Cause(ctx)
	}
}

// release gives the lock up.
func (l *lock) release() { l.f.Close() }

// ownedRegular checks that f is a regular file of this user's: a lock file
// someone else made (in a directory they could write to) could be held by
// them forever, or be something other than a file.
func ownedRegular(f *os.File) error {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fmt.Errorf("it is not a regular file")
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("it is owned by uid %d, not by you (uid %d)", st.Uid, os.Geteuid())
	}
	return nil
}

// LockError is a lock beside ControlPath that could not be taken.
type LockError struct {
	Path string
	// Held says another process held the lock past lockWait: that may
	// pass; a lock file that is not the user's will not.
	Held bool
	Err  error
}

func (e *LockError) Error() string {
	return fmt.Sprintf("cannot lock %s to start the shared connection: %v", e.Path, e.Err)
}

func (e *LockError) Unwrap() error { return e.Err }

func (e *LockError) Permanent() bool { return !e.Held }

// NotShared: a lock that cannot be taken stops sharing, not the session.
func (e *LockError) NotShared() bool { return true }

func (e *LockError) Hint() string {
	if e.Held {
		return "another m2m-ssh for this host is stuck starting the shared connection; see the master's log, or set ControlMaster no"
	}
	return "ControlPath must be in a directory that only you can write to; remove the file if it is not yours, or set ControlMaster no"
}
