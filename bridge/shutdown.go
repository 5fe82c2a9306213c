package bridge

import (
	"errors"
	"log/slog"
	"time"

	"github.com/machine-to-machine/m2m-ssh/transport"
)

// ShutdownBound is how soon m2m-ssh exits after SIGTERM, SIGINT or SIGHUP,
// whatever it is doing: a host that asked a server to stop does not wait
// long before it kills it, and a killed bridge answers nothing.
const ShutdownBound = time.Second

// The waits of ending a remote program once the session is over. ssh -T
// waits for the program as long as it runs; m2m-ssh must neither keep the
// host waiting nor leave behind a program that nobody talks to.
const (
	// exitGrace is how long the program has to exit after the host
	// closed stdin before the server is asked to stop it: MCP servers
	// exit at EOF, and hosts following MCP's stdio shutdown (the
	// TypeScript SDK's) wait 2 s before they send SIGTERM.
	exitGrace = 2 * time.Second
	// termGrace is how long it has after TERM before KILL: as long
	// again, for a server that cleans up.
	termGrace = 2 * time.Second
	// killGrace is how long the channel may stay open after KILL: a
	// killed program's exit is reported at once.
	killGrace = time.Second

	// After a signal each wait is shorter, so that the three of them,
	// the answers to the host and the exit fit in ShutdownBound.
	hurriedExitGrace = 200 * time.Millisecond
	hurriedTermGrace = 200 * time.Millisecond
	hurriedKillGrace = 150 * time.Millisecond
	// hurriedDrain bounds the wait for the output a program wrote
	// before it ended to reach the host, after a signal.
	hurriedDrain = 100 * time.Millisecond
)

// schedule is how long each step of ending a remote program waits.
type schedule struct {
	exit, term, kill time.Duration
}

// schedules are the calm one, after the host closed stdin, and the one
// after a signal.
type schedules struct {
	calm, hurried schedule
}

func (s *schedules) defaults(exitWait time.Duration) {
	if s.calm == (schedule{}) {
		s.calm = schedule{exitWait, termGrace, killGrace}
	}
	if s.hurried == (schedule{}) {
		s.hurried = schedule{min(exitWait, hurriedExitGrace), hurriedTermGrace, hurriedKillGrace}
	}
}

// stopper ends the remote programs of a session on the bridge's
// schedules.
type stopper struct {
	schedules schedules
	log       *slog.Logger
	name      string // the target's alias, for the log
}

// stop ends the program of a session whose input is closed, or cannot be
// written: it waits for the program to exit, and when it does not, asks
// the server to signal it TERM, then KILL. It returns the exit status, or
// ErrNoExitStatus when the program did not end; closing the session is
// the caller's. Once hurry is closed (a signal came), each wait is cut to
// the hurried schedule's.
func (st stopper) stop(remote transport.Remote, hurry <-chan struct{}) error {
	exited := make(chan error, 1)
	go func() { exited <- remote.Wait() }()
	s := st.schedules
	w := &stopWait{exited: exited, hurry: hurry, settle: s.calm.kill, hurriedSettle: s.hurried.kill}
	if status, ok, _ := w.wait(s.calm.exit, s.hurried.exit, nil); ok {
		return status
	}
	steps := []struct {
		sig           string
		calm, hurried time.Duration
		why           string
	}{
		{"TERM", s.calm.term, s.hurried.term, "the remote program did not exit after its input closed; asking the server to stop it"},
		{"KILL", s.calm.kill, s.hurried.kill, "the remote program did not exit after TERM; asking the server to kill it"},
	}
	for _, step := range steps {
		st.log.Info(step.why, "target", st.name, "signal", step.sig)
		replied := make(chan error, 1)
		go func() { replied <- remote.Signal(step.sig) }()
		status, ok, refused := w.wait(step.calm, step.hurried, replied)
		if ok {
			return status
		}
		if refused != nil {
			st.log.Warn("the server refused to signal the remote program; closing the session, but the program may keep running on the server",
				"target", st.name, "signal", step.sig,
				"hint", signalHint)
			return transport.ErrNoExitStatus
		}
	}
	st.log.Warn("the remote program did not end after KILL; closing the session, but it may keep running on the server", "target", st.name)
	return transport.ErrNoExitStatus
}

// signalHint is what OpenSSH's session_signal_req allows: a command the
// client asked for, not a subsystem or forced command, and before 9.8 not
// a session without privilege separation (a root login).
const signalHint = "OpenSSH signals only a command m2m-ssh runs itself: not a subsystem, a ForceCommand or an authorized_keys command=, and before OpenSSH 9.8 not a root login. Make the remote MCP server exit when its stdin closes"

// stopWait is one stopper.stop: the program's exit, and the signal that
// shortens its waits.
type stopWait struct {
	exited <-chan error
	hurry  <-chan struct{}
	// settle and hurriedSettle bound the wait for the exit after a
	// refusal: the kill graces, for OpenSSH refuses to signal a program
	// that has just ended (it has no pid for it any more), having sent
	// its exit status already, and the channel's close that ends Wait
	// follows the refusal as it follows a KILL.
	settle, hurriedSettle time.Duration
}

// wait waits calm, or hurried from the moment hurry is closed if that is
// sooner, for the program to exit. replied, when not nil, delivers the
// server's answer to a signal; after a refusal the program has at most
// the settle time left to be found ended, and refused is returned when it
// is not.
func (w *stopWait) wait(calm, hurried time.Duration, replied <-chan error) (status error, exited bool, refused error) {
	deadline := time.Now().Add(calm)
	hurry, settle := w.hurry, w.settle
	select {
	case <-hurry:
		deadline, hurry, settle = time.Now().Add(min(calm, hurried)), nil, w.hurriedSettle
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	shorten := func(d time.Duration) {
		if at := time.Now().Add(d); at.Before(deadline) {
			deadline = at
			timer.Reset(time.Until(deadline))
		}
	}
	for {
		select {
		case status := <-w.exited:
			return status, true, nil
		case err := <-replied:
			replied = nil
			var se *transport.SignalError
			if errors.As(err, &se) {
				refused = err
				shorten(settle)
			}
			// Accepted, or the channel is gone: the exit follows.
		case <-hurry:
			hurry, settle = nil, w.hurriedSettle
			shorten(hurried)
			if refused != nil {
				shorten(settle)
			}
		case <-timer.C:
			return nil, false, refused
		}
	}
}
