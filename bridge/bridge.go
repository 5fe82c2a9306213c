package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Bridge carries one MCP host session over SSH.
type Bridge struct {
	// Name is the target's alias, for messages.
	Name    string
	Connect Connect
	Logger  *slog.Logger
	// Stderr receives the remote's stderr, each line prefixed; nil
	// discards it.
	Stderr io.Writer
	// ExitWait bounds the wait for the remote program to end after the
	// host closed stdin or a signal arrived (default 5 s).
	ExitWait time.Duration
	// FailGrace is how long a failed start waits for the host's first
	// request, to answer it with the error (default 2 s).
	FailGrace time.Duration
}

// ExitStatus is the exit status m2m-ssh reports for its own failures, as
// ssh does.
const ExitStatus = 255

// hostFrame is a frame from the host, owned by the bridge.
type hostFrame struct {
	data []byte
	id   []byte // set for requests
}

// Run bridges in (the host's stdin) and out (its stdout) to the remote
// until the host closes stdin, ctx ends or the remote goes away. It returns
// the remote program's exit status, or ExitStatus and the error that kept
// the session from running.
func (b *Bridge) Run(ctx context.Context, in io.Reader, out io.Writer) (int, error) {
	b.defaults()
	host := &hostWriter{w: out}
	frames := make(chan hostFrame, 64)
	go b.readHost(in, frames, host)

	start := time.Now()
	remote, err := b.Connect(ctx)
	if err != nil {
		b.refuse(frames, host, err)
		return ExitStatus, err
	}
	defer remote.Close()
	b.Logger.Info("connected", "target", b.Name, "took", time.Since(start).Round(time.Millisecond))

	var pending inflight
	pumped := make(chan error, 1)
	go func() { pumped <- b.pumpRemote(remote, host, &pending) }()
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		b.copyStderr(remote.Stderr())
	}()

	w := bufio.NewWriterSize(remote, 64<<10)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				b.Logger.Debug("host closed stdin")
				return b.finish(remote, w, pumped, stderrDone)
			}
			if f.id != nil {
				pending.add(f.id)
			}
			_, err := w.Write(f.data)
			if err == nil && len(frames) == 0 {
				err = w.Flush()
			}
			if err != nil {
				// The write failed because the channel is gone; the
				// pump sees the same and ends.
				return b.lost(remote, host, &pending, frames, <-pumped)
			}
		case err := <-pumped:
			return b.lost(remote, host, &pending, frames, err)
		case <-ctx.Done():
			b.Logger.Info("ending the session", "reason", context.Cause(ctx))
			return b.finish(remote, w, pumped, stderrDone)
		}
	}
}

func (b *Bridge) defaults() {
	if b.Logger == nil {
		b.Logger = slog.New(slog.DiscardHandler)
	}
	if b.Stderr == nil {
		b.Stderr = io.Discard
	}
	if b.ExitWait <= 0 {
		b.ExitWait = 5 * time.Second
	}
	if b.FailGrace <= 0 {
		b.FailGrace = 2 * time.Second
	}
}

// readHost reads the host's frames, answers the ones that are not JSON
// and hands the others on. It closes frames at the end of input.
func (b *Bridge) readHost(in io.Reader, frames chan<- hostFrame, host *hostWriter) {
	defer close(frames)
	fr := NewFrameReader(in)
	for {
		frame, err := fr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.Logger.Warn("reading from the host failed", "err", err)
			}
			return
		}
		if !json.Valid(frame) {
			b.Logger.Warn("the host sent a frame that is not JSON; answered with a parse error", "start", preview(frame))
			host.frame(errorFrame(nil, CodeParseError, "m2m-ssh: parse error: the frame is not valid JSON", nil))
			continue
		}
		env, _ := ParseEnvelope(frame)
		f := hostFrame{data: appendSafe(make([]byte, 0, len(frame)), frame)}
		if env.Kind == KindRequest {
			f.id = bytes.Clone(env.ID)
		}
		frames <- f
	}
}

// pumpRemote copies the remote's frames to the host until the remote's
// stdout ends. Lines that are not JSON-RPC are logged and dropped: stdout
// carries nothing but frames.
func (b *Bridge) pumpRemote(remote io.Reader, host *hostWriter, pending *inflight) error {
	fr := NewFrameReader(remote)
	warned := false
	for {
		frame, err := fr.Next()
		if err != nil {
			return err
		}
		env, err := ParseEnvelope(frame)
		if err != nil {
			if !warned {
				b.Logger.Warn("the remote wrote a line that is not JSON-RPC; dropped it", "start", preview(frame),
					"hint", "shell start-up files (.bashrc, .profile, motd) that print to stdout corrupt the stream: make them quiet for non-interactive shells")
				warned = true
			} else {
				b.Logger.Debug("dropped a line that is not JSON-RPC", "start", preview(frame))
			}
			continue
		}
		if env.Kind == KindResponse {
			pending.done(env.ID)
		}
		if b.Logger.Enabled(context.Background(), slog.LevelDebug) {
			b.Logger.Debug("remote → host", "frame", preview(frame))
		}
		if err := host.frame(frame); err != nil {
			return fmt.Errorf("writing to the host: %w", err)
		}
	}
}

// copyStderr passes the remote's stderr on, line by line, prefixed.
func (b *Bridge) copyStderr(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			msg := append([]byte("m2m-ssh: remote: "), line...)
			if msg[len(msg)-1] != '\n' {
				msg = append(msg, '\n')
			}
			b.Stderr.Write(msg)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// finish ends a session the host is done with: EOF to the remote, a
// bounded wait for it to end, then its exit status.
func (b *Bridge) finish(remote Remote, w *bufio.Writer, pumped <-chan error, stderrDone <-chan struct{}) (int, error) {
	w.Flush()
	remote.CloseWrite()
	timer := time.NewTimer(b.ExitWait)
	defer timer.Stop()
	select {
	case <-pumped:
		// The remote's stdout has ended; its stderr and exit status
		// follow at once unless the connection is stuck.
		select {
		case <-stderrDone:
		case <-timer.C:
		}
	case <-timer.C:
		b.Logger.Warn("the remote did not end after its input closed; closing the session", "waited", b.ExitWait)
		remote.Close()
	}
	return exitStatus(b.wait(remote))
}

// lost ends a session whose remote went away while the host still talks:
// every request the remote has not answered gets an error.
func (b *Bridge) lost(remote Remote, host *hostWriter, pending *inflight, frames <-chan hostFrame, cause error) (int, error) {
	status := b.wait(remote)
	var what string
	switch e := status.(type) {
	case nil:
		what = "the remote MCP server exited"
	case *ExitError:
		what = "the remote MCP server " + e.describe()
	default:
		what = "the connection was lost"
	}
	if cause != nil && !errors.Is(cause, io.EOF) {
		b.Logger.Debug("remote pump ended", "err", cause)
	}
	msg := fmt.Sprintf("m2m-ssh: %s (%s); the request may or may not have run", what, b.Name)
	for _, id := range pending.drain() {
		host.frame(errorFrame(id, CodeUnavailable, msg, nil))
	}
	// Requests read but not yet sent were never asked.
	notSent := "m2m-ssh: " + what + " (" + b.Name + "); the request was not sent"
	for {
		select {
		case f, ok := <-frames:
			if ok && f.id != nil {
				host.frame(errorFrame(f.id, CodeUnavailable, notSent, nil))
			}
			if ok {
				continue
			}
		default:
		}
		break
	}
	b.Logger.Error(what, "target", b.Name)
	code, _ := exitStatus(status)
	return code, fmt.Errorf("bridge: %s (%s)", what, b.Name)
}

// wait is the remote's exit status, bounded in time: a connection that
// died without closing may never deliver one.
func (b *Bridge) wait(remote Remote) error {
	done := make(chan error, 1)
	go func() { done <- remote.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(b.ExitWait):
		remote.Close()
		return <-done
	}
}

func exitStatus(err error) (int, error) {
	var ee *ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.Status, nil
	}
	return ExitStatus, nil
}

// refuse answers the host's requests with the error that kept the session
// from starting. It waits FailGrace for the first request and keeps
// answering until the host has been quiet for FailGrace: a client that
// probes with one method and falls back to another (server/discover, then
// initialize) gets an answer to each.
func (b *Bridge) refuse(frames <-chan hostFrame, host *hostWriter, err error) {
	msg := "m2m-ssh: " + err.Error()
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		msg += " (hint: " + h.Hint() + ")"
	}
	timer := time.NewTimer(b.FailGrace)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return
			}
			if f.id == nil {
				continue
			}
			host.frame(errorFrame(f.id, CodeUnavailable, msg, nil))
			timer.Reset(b.FailGrace)
		case <-timer.C:
			return
		}
	}
}

// preview is the start of a frame, for logs.
func preview(frame []byte) string {
	const max = 120
	frame = bytes.TrimRight(frame, "\r\n")
	if len(frame) > max {
		return string(frame[:max]) + "…"
	}
	return string(frame)
}
