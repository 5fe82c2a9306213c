//go:build linux

package mux_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/machine-to-machine/m2m-ssh/mux"
)

// idleChannel is a session channel whose remote program runs until the
// channel is closed and says nothing: enough to count sessions without
// an sshd (which would refuse more than its own MaxSessions first).
type idleChannel struct {
	once   sync.Once
	closed chan struct{}
	reqs   chan *ssh.Request
}

func newIdleChannel() *idleChannel {
	return &idleChannel{closed: make(chan struct{}), reqs: make(chan *ssh.Request)}
}

func (c *idleChannel) Read([]byte) (int, error)                       { <-c.closed; return 0, io.EOF }
func (c *idleChannel) Write(p []byte) (int, error)                    { return len(p), nil }
func (c *idleChannel) CloseWrite() error                              { return nil }
func (c *idleChannel) SendRequest(string, bool, []byte) (bool, error) { return true, nil }
func (c *idleChannel) Stderr() io.ReadWriter                          { return c }
func (c *idleChannel) Close() error {
	c.once.Do(func() { close(c.closed); close(c.reqs) })
	return nil
}

func TestServerBoundsSessions(t *testing.T) {
	counts := make(chan int, 4*mux.MaxSessions)
	l, err := mux.Listen(filepath.Join(shortDir(t), "cm"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &mux.Server{
		Open: func(context.Context) (ssh.Channel, <-chan *ssh.Request, error) {
			c := newIdleChannel()
			return c, c.reqs, nil
		},
		OnSessions: func(n int) { counts <- n },
	}
	go srv.Serve(l)
	t.Cleanup(func() { l.Close(); srv.Close() })

	open := func() (*mux.Session, error) {
		p := newStdio(t)
		s, err := dial(t, l.Path()).NewSession(timeout(t, hangBound), mux.SessionRequest{Command: "x"}, p.farIn, p.farOut, p.farErr)
		p.closeFar()
		return s, err
	}
	var sessions []*mux.Session
	for i := range mux.MaxSessions {
		s, err := open()
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		if n := <-counts; n != i+1 {
			t.Fatalf("OnSessions(%d) after session %d", n, i+1)
		}
		sessions = append(sessions, s)
	}
	_, err = open()
	var re *mux.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "sessions") {
		t.Fatalf("session %d: %v, want a refusal", mux.MaxSessions+1, err)
	}
	for _, s := range sessions {
		s.Close()
	}
	deadline := time.After(hangBound)
	for n := mux.MaxSessions; n > 0; {
		select {
		case n = <-counts:
		case <-deadline:
			t.Fatalf("OnSessions stopped at %d after every session closed", n)
		}
	}
	if _, err := open(); err != nil {
		t.Fatalf("a session after the others ended: %v", err)
	}
}
