package mux

// Listen creates the control socket at path as OpenSSH does: bound under a
// temporary name in the same directory, made mode 0600, then linked into
// place, so that two racing masters cannot both own path. The directory
// must be owned by this user (or root) and not writable by others; a
// path that exists already is an error (a live master's, or a stale one
// the caller removes after Dial said ErrNoMaster).
func Listen(path string) (*Listener, error) {
	return nil, errNotImplemented
}

// A Listener is a master's control socket.
type Listener struct {
	path string
}

// Path is the control path.
func (l *Listener) Path() string { return l.path }

// Close stops accepting and removes the socket from the file system.
// Control connections already accepted go on until the Server ends them.
func (l *Listener) Close() error {
	return nil
}
