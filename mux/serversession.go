package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// serverSession is a session channel a master runs for one control
// connection: the client's three descriptors copied to and from it.
type serverSession struct {
	c                     *serverConn
	id                    uint32
	ch                    ssh.Channel
	stdin, stdout, stderr *os.File
	exited                chan exit // the channel's end, with what the remote said
}

// exit is how the remote program ended, as its session's requests said.
type exit struct {
	status     uint32
	haveStatus bool
	signal     string
}

// openSession opens the channel and makes the requests MUX_C_NEW_SESSION
// asks for, as OpenSSH's mux_session_confirm and client_session2_setup
// do: agent forwarding when both sides want it, the environment (no
// reply asked), then exec, subsystem or shell. Unlike OpenSSH's
// master it waits for the answer to the last, so that a refusal reaches
// the client as the refusal of its request rather than as a closed
// connection (x/crypto's SendRequest cannot say when a request is sent,
// so the client's input could not safely be sent before the answer).
func openSession(c *serverConn, id uint32, m fromClient, files []*os.File) (*serverSession, error) {
	ctx, cancel := context.WithTimeout(c.ctx, openTimeout)
	defer cancel()
	ch, reqs, err := c.s.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("the session channel could not be opened: %w", err)
	}
	s := &serverSession{c: c, id: id, ch: ch, stdin: files[0], stdout: files[1], stderr: files[2], exited: make(chan exit, 1)}
	go s.requests(reqs)
	if m.Agent && c.s.ForwardAgent != nil {
		c.s.ForwardAgent(ch)
	}
	for _, e := range m.Env {
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			continue // as mux.c's env_permitted
		}
		if _, err := ch.SendRequest("env", false, ssh.Marshal(struct{ Name, Value string }{name, value})); err != nil {
			ch.Close()
			return nil, fmt.Errorf("sending the environment: %w", err)
		}
	}
	kind, payload := "shell", []byte(nil)
	switch {
	case m.Subsystem:
		kind, payload = "subsystem", ssh.Marshal(struct{ Name string }{m.Command})
	case m.Command != "":
		kind, payload = "exec", ssh.Marshal(struct{ Command string }{m.Command})
	}
	answer := make(chan error, 1)
	go func() {
		ok, err := ch.SendRequest(kind, true, payload)
		if err == nil && !ok {
			err = fmt.Errorf("the server refused the %s request", kind)
		}
		answer <- err
	}()
	select {
	case err = <-answer:
	case <-ctx.Done():
		err = fmt.Errorf("no answer to the %s request: %w", kind, ctx.Err())
	}
	if err != nil {
		ch.Close() // also ends a SendRequest still waiting
		return nil, err
	}
	c.log.Debug("session opened", "session", id, "request", kind)
	return s, nil
}

// requests reads the remote's requests on the channel until it closes,
// then reports how the program ended.
func (s *serverSession) requests(reqs <-chan *ssh.Request) {
	var e exit
	for r := range reqs {
		switch r.Type {
		case "exit-status":
			var v struct{ Status uint32 }
			if ssh.Unmarshal(r.Payload, &v) == nil {
				e.status, e.haveStatus = v.Status, true
			}
		case "exit-signal":
			var v struct {
				Signal string
				Core   bool
				Msg    string
				Lang   string
			}
			if ssh.Unmarshal(r.Payload, &v) == nil {
				e.signal = v.Signal
			}
		}
		if r.WantReply {
			r.Reply(false, nil)
		}
	}
	s.exited <- e
}

// run copies until the channel ends, then sends the exit message (when
// the remote sent an exit status: OpenSSH's master sends none for a
// program killed by a signal) and closes the control connection, as
// OpenSSH's master does once a session's channel is gone.
func (s *serverSession) run() {
	go func() {
		io.Copy(s.ch, s.stdin)
		s.ch.CloseWrite()
	}()
	// Each output is closed as soon as the remote ends it: the client
	// sees its EOF then, not only at the session's end.
	var out sync.WaitGroup
	out.Go(func() { copyOut(s.stdout, s.ch); s.stdout.Close() })
	out.Go(func() { copyOut(s.stderr, s.ch.Stderr()); s.stderr.Close() })
	out.Wait()
	e := <-s.exited
	s.ch.Close()
	s.stdin.Close() // ends the copy of a client's input that never ended
	switch {
	case e.haveStatus:
		s.c.send(newBuilder(msgExit).u32(s.id).u32(e.status))
		s.c.log.Debug("session ended", "session", s.id, "status", e.status)
	case e.signal != "":
		s.c.log.Info("the remote program was killed by a signal", "session", s.id, "signal", e.signal)
	default:
		s.c.log.Info("the session's channel closed without an exit status", "session", s.id)
	}
	s.c.close()
	s.c.s.release()
}

// copyOut writes the remote's output to a client's descriptor. When the
// client stops reading, the rest is drained so that the session can end
// and its exit status still arrive.
func copyOut(dst io.Writer, src io.Reader) {
	_, err := io.Copy(markWrites{dst}, src)
	var we *writeError
	if errors.As(err, &we) {
		io.Copy(io.Discard, src)
	}
}

// markWrites tells copyOut's write errors from its read errors.
type markWrites struct{ w io.Writer }

func (m markWrites) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// abandon ends the session because its control connection ended: the
// channel closes, which ends run.
func (s *serverSession) abandon() { s.ch.Close() }
