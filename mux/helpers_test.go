//go:build unix

package mux_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/mux"
)

// hangBound is the generous bound on anything that must not hang.
const hangBound = 30 * time.Second

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// stdio is the three pipes a session's descriptors are the far ends of.
type stdio struct {
	in, out, err          *os.File // our ends: write stdin, read stdout and stderr
	farIn, farOut, farErr *os.File
}

func newStdio(t *testing.T) *stdio {
	t.Helper()
	var s stdio
	var err error
	if s.farIn, s.in, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	if s.out, s.farOut, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	if s.err, s.farErr, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{s.in, s.out, s.err, s.farIn, s.farOut, s.farErr} {
			f.Close()
		}
	})
	return &s
}

// closeFar closes our copies of the descriptors the master now holds, so
// that its closing them is the end of the pipes.
func (s *stdio) closeFar() {
	s.farIn.Close()
	s.farOut.Close()
	s.farErr.Close()
}

// result is what a session produced.
type result struct {
	stdout, stderr []byte
	status         int
	err            error
}

// run opens a session with input as its stdin and collects everything.
func run(t *testing.T, c *mux.Client, req mux.SessionRequest, input io.Reader) result {
	t.Helper()
	io := newStdio(t)
	s, err := c.NewSession(timeout(t, hangBound), req, io.farIn, io.farOut, io.farErr)
	if err != nil {
		return result{err: err}
	}
	io.closeFar()
	return collect(t, s, io, input)
}

func collect(t *testing.T, s *mux.Session, p *stdio, input io.Reader) result {
	t.Helper()
	return sshtest.Within(t, 2*hangBound, func() result {
		var r result
		var wg sync.WaitGroup
		var out, errb bytes.Buffer
		wg.Go(func() {
			if input != nil {
				io.Copy(p.in, input)
			}
			p.in.Close()
		})
		wg.Go(func() { io.Copy(&out, p.out) })
		wg.Go(func() { io.Copy(&errb, p.err) })
		r.status, r.err = s.Wait()
		wg.Wait()
		r.stdout, r.stderr = out.Bytes(), errb.Bytes()
		return r
	})
}
