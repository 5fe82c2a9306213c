package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// reconnected is the outcome of restoring a session.
type reconnected struct {
	a     *attempt
	tries int // tries in a row that did not bring a working session
	err   error
}

// restorer brings a lost session back on a new connection: backoff, a new
// Connect, and the replay of the host's greeting; b holds its settings.
type restorer struct{ b *Bridge }

// run tries to open a session and replay the greeting until it works,
// with exponential backoff, up to Retries tries in a row.
func (rs restorer) run(ctx context.Context, script replay, failures int, cause string) reconnected {
	b := rs.b
	err := errors.New(cause)
	for try := failures; try < b.Retries; try++ {
		wait := time.NewTimer(rs.backoff(try))
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			return reconnected{tries: try, err: context.Cause(ctx)}
		}
		b.Logger.Debug("reconnecting", "target", b.Name, "try", try+1)
		var a *attempt
		a, err = rs.attempt(ctx, script)
		if err == nil {
			if !a.proven {
				// A session with nothing to replay proves itself
				// by talking; until then this try counts.
				try++
			}
			return reconnected{a: a, tries: try}
		}
		if ctx.Err() != nil {
			return reconnected{tries: try, err: context.Cause(ctx)}
		}
		b.Logger.Warn("reconnecting failed", "target", b.Name, "try", try+1, "of", b.Retries, "err", err)
		if verdict.Permanent(err) {
			return reconnected{tries: try + 1, err: err}
		}
	}
	return reconnected{tries: max(failures, b.Retries), err: err}
}

// backoff is the wait before try (from 0): BackoffMin doubled for each
// try before it, at most BackoffMax, less up to a fifth at random so that
// many clients of a restarted server do not all come back at once.
func (rs restorer) backoff(try int) time.Duration {
	b := rs.b
	d := b.BackoffMax
	if try < 32 {
		d = min(b.BackoffMin<<try, b.BackoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// attempt is a new session, opened and greeted the way the host opened
// the lost one.
type attempt struct {
	remote  transport.Remote
	fr      *remoteFrames
	prelude [][]byte // frames the remote sent before the replay was done
	changed []string // list_changed notifications to send the host
	proven  bool     // the remote answered the replayed greeting
}

// attempt connects and replays the greeting, swallowing the responses to
// it. The replay is bounded by ReconnectTimeout: a server that does not
// answer is a failed try.
func (rs restorer) attempt(ctx context.Context, script replay) (*attempt, error) {
	b := rs.b
	remote, err := b.Connect(ctx)
	if err != nil {
		return nil, err
	}
	b.Logger.Debug("connected; replaying the handshake", "target", b.Name, "requests", len(script.requests))
	a := &attempt{remote: remote, fr: newRemoteFrames(remote)}
	a.fr.Max = b.MaxFrame
	if script.empty() {
		return a, nil
	}
	timer := time.AfterFunc(b.ReconnectTimeout, func() { remote.Close() })
	stop := context.AfterFunc(ctx, func() { remote.Close() })
	err = a.replay(script)
	// Whether or not the replay got through, a session closed by the
	// timer or ctx is of no use.
	timerStopped, ctxStopped := timer.Stop(), stop()
	if timerStopped && ctxStopped {
		if err == nil {
			return a, nil
		}
	} else if err == nil {
		err = fmt.Errorf("replaying the handshake took longer than %s", b.ReconnectTimeout)
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
	}
	remote.Close()
	return nil, err
}

func (a *attempt) replay(script replay) error {
	for _, req := range script.requests {
		if _, err := a.remote.Write(req.frame); err != nil {
			return fmt.Errorf("replaying %s: %w", req.method, err)
		}
		if err := a.await(req); err != nil {
			return fmt.Errorf("replaying %s: %w", req.method, err)
		}
	}
	if script.initialized != nil {
		if _, err := a.remote.Write(script.initialized); err != nil {
			return fmt.Errorf("replaying %s: %w", methodInitialized, err)
		}
	}
	a.proven = true
	return nil
}

// await reads the remote's frames until the response to req; the frames
// before it are kept to pass on.
func (a *attempt) await(req replayed) error {
	for {
		frame, err := a.fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				// A server that crashes at start ends here: say how.
				return errors.New(describeEnd(waitStatus(a.remote, statusWait)) + " before answering")
			}
			return err
		}
		env, perr := jsonrpc.ParseEnvelope(frame)
		if perr != nil || env.Kind != jsonrpc.KindResponse || !bytes.Equal(env.ID, req.id) {
			a.prelude = append(a.prelude, bytes.Clone(frame))
			continue
		}
		changed, err := greetingResult(frame)
		if err != nil {
			return err
		}
		for _, m := range changed {
			if !slices.Contains(a.changed, m) {
				a.changed = append(a.changed, m)
			}
		}
		return nil
	}
}

// ReconnectError is a lost session that could not be restored.
type ReconnectError struct {
	Alias string
	Tries int
	Err   error // the last try's failure
}

func (e *ReconnectError) Error() string {
	return fmt.Sprintf("lost the session with %s and gave up after %d tries to restore it: %v", e.Alias, e.Tries, e.Err)
}

func (e *ReconnectError) Unwrap() error { return e.Err }

func (e *ReconnectError) Hint() string {
	if h := verdict.Hint(e.Err); h != "" {
		return h
	}
	return fmt.Sprintf("check that 'ssh %s' works and that the remote MCP server starts and stays up (its stderr is logged with the prefix 'remote:'); then restart the MCP server in the host", e.Alias)
}
