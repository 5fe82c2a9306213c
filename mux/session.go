package mux

// A SessionRequest is what MUX_C_NEW_SESSION asks for: exactly one of
// Command (exec), Subsystem, or neither (a shell).
type SessionRequest struct {
	Command   string   // exec: the command line
	Subsystem string   // subsystem name (sent as the command, with the subsystem flag)
	Env       []string // "NAME=value", sent as OpenSSH sends SendEnv/SetEnv
	Term      string   // TERM; a tty is never requested
}

// A Session is a session channel the master opened for a client; its
// stdio are the descriptors passed in NewSession.
type Session struct {
	id uint32
}

// ID is the master's id of the session (its channel number).
func (s *Session) ID() uint32 { return s.id }

// Wait returns when the master sends MUX_S_EXIT_MESSAGE, with the exit
// status, or when the control connection ends without one (the master
// went away): then errors.Is(err, ErrMasterGone). Like OpenSSH's client it
// returns only once the master has closed the connection too, after the
// session's output is written. OpenSSH's master sends no exit message for
// a remote program killed by a signal (ssh then exits 255), so that case
// also gives ErrMasterGone; a caller that must tell the two apart can Dial
// and Check again.
func (s *Session) Wait() (exitStatus int, err error) {
	return 0, errNotImplemented
}

// Close closes the control connection, which makes the master close the
// session's channel.
func (s *Session) Close() error {
	return nil
}
