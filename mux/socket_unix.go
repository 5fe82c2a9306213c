//go:build unix

package mux

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenBacklog is the control socket's listen queue, OpenSSH's figure.
const listenBacklog = 64

// checkSocket says whether the file at path is a control socket to trust
// as OpenSSH's users expect: a socket of this user's, reachable by nobody
// else. No file there means no master.
func checkSocket(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &NoMasterError{Path: path}
	}
	if err != nil {
		return fmt.Errorf("the control socket %s cannot be read: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return &SocketError{Path: path, Reason: "is not a socket"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &SocketError{Path: path, Reason: "has no owner this system reports"}
	}
	if me := uint32(os.Getuid()); uint32(st.Uid) != me {
		return &SocketError{Path: path, Reason: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, me)}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &SocketError{Path: path, Reason: fmt.Sprintf("is accessible to group or others (mode %04o)", perm)}
	}
	return nil
}

// dialSocket connects to the master at path once the socket is trusted,
// and checks that the process listening is this user's (or root's).
func dialSocket(ctx context.Context, path string) (*net.UnixConn, error) {
	if err := checkSocket(path); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, &NoMasterError{Path: path, Stale: true}
	case errors.Is(err, syscall.ENOENT):
		return nil, &NoMasterError{Path: path}
	case err != nil:
		return nil, fmt.Errorf("connecting to the master at %s: %w", path, err)
	}
	conn := c.(*net.UnixConn)
	uid, err := peerUID(conn)
	if err == nil && !trustedUID(uid) {
		err = &SocketError{Path: path, Reason: fmt.Sprintf("is served by a process of uid %d, not yours (uid %d)", uid, os.Getuid())}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// checkDir refuses a directory where someone else could replace the socket.
// A sticky directory (/tmp) is safe: others cannot rename or remove our file.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the control socket's directory: %w", err)
	}
	if !fi.IsDir() {
		return &SocketError{Path: dir, Dir: true, Reason: "is not a directory"}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &SocketError{Path: dir, Dir: true, Reason: "has no owner this system reports"}
	}
	if me := uint32(os.Getuid()); uint32(st.Uid) != me && st.Uid != 0 {
		return &SocketError{Path: dir, Dir: true, Reason: fmt.Sprintf("is owned by uid %d, not by you or root", st.Uid)}
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return &SocketError{Path: dir, Dir: true, Reason: fmt.Sprintf("is writable by group or others (mode %04o)", fi.Mode().Perm())}
	}
	return nil
}

// tmpSuffix is the length of the random part of the temporary name a
// socket is bound under (after a dot).
const tmpSuffix = 16

// checkListen is what listenSocket checks before it binds: the
// directory, and a path short enough with its temporary suffix.
func checkListen(path string) error {
	if err := checkDir(filepath.Dir(path)); err != nil {
		return err
	}
	if n, max := len(path)+1+tmpSuffix, len(unix.RawSockaddrUnix{}.Path)-1; n > max {
		return fmt.Errorf("the control path %s is too long for a socket (with its temporary suffix, %d bytes of at most %d)", path, n, max)
	}
	return nil
}

// listenSocket binds a listening socket at path as muxserver_listen does:
// under a temporary name, made 0600 before it listens, then linked into
// place, so that nobody ever connects to it with looser permissions and
// of two racing masters exactly one gets path (the other fs.ErrExist).
func listenSocket(path string) (*net.UnixListener, error) {
	if err := checkListen(path); err != nil {
		return nil, err
	}
	tmp := path + "." + rand.Text()[:tmpSuffix]
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("creating the control socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: tmp}); err != nil {
		return nil, fmt.Errorf("binding the control socket %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, fmt.Errorf("making the control socket private: %w", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return nil, fmt.Errorf("listening on the control socket: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("the control socket %s exists already: %w", path, fs.ErrExist)
		}
		return nil, fmt.Errorf("placing the control socket at %s: %w", path, err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return ln.(*net.UnixListener), nil
}
