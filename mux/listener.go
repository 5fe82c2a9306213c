package mux

import (
	"net"
	"os"
	"sync"
)

// CheckListen reports what would keep Listen from listening at path
// (its directory not to be trusted, a path too long for a socket), as
// Listen would, without binding anything: a master checks before it
// connects, so that nobody logs in for a socket that cannot be.
func CheckListen(path string) error { return checkListen(path) }

// Listen creates the control socket at path as OpenSSH does: bound under a
// temporary name in the same directory, made mode 0600 before it listens,
// then linked into place, so that nobody connects to it with looser
// permissions and of two racing masters exactly one gets path. The
// directory must be owned by this user (or root) and not writable by
// group or others unless sticky (as /tmp is); else a [*SocketError]. A
// path that exists already (a live master's socket, or a stale one the
// caller may remove once Dial says ErrNoMaster) gives an error for which
// errors.Is(err, fs.ErrExist).
func Listen(path string) (*Listener, error) {
	ln, err := listenSocket(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Listener{path: path, ln: ln, file: fi}, nil
}

// A Listener is a master's control socket.
type Listener struct {
	path string
	ln   *net.UnixListener
	file os.FileInfo // the socket as placed, to remove only our own

	once sync.Once
	err  error
}

// Path is the control path.
func (l *Listener) Path() string { return l.path }

// Close stops accepting and removes the socket from the file system, if
// it is still the one Listen placed there. Control connections already
// accepted go on until the Server ends them.
func (l *Listener) Close() error {
	l.once.Do(func() {
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
		l.err = l.ln.Close()
	})
	return l.err
}
