package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// MasterDialTimeout bounds the connect to a master's socket, its hello and
// doctor's alive check: all local, answered at once by a master that is
// not stuck, so a socket that accepts and stays silent cannot hang the
// host.
const MasterDialTimeout = 5 * time.Second

// Sharing reaches the server through a connection that is already there:
// the OpenSSH master (ssh -M, ControlMaster) listening at the target's
// ControlPath, with OpenSSH's connection-sharing protocol. When no master
// listens there it connects directly, as SSH does, and tries the master
// again on every later connect: a session that lost its master rides the
// next one that comes up.
type Sharing struct {
	Target  *sshcfg.Target
	Program Program
	// Direct makes the Dialer of a direct connection. It is called once,
	// when a direct connection is first needed: a session that rides a
	// master needs no identities or host keys of its own (the master
	// may have logged in with a second factor that m2m-ssh cannot give).
	Direct func(ctx context.Context) (*Dialer, error)
	// Logger is told which way each connect went; nil discards it.
	Logger *slog.Logger
	// Trace, when set, is told of the master (Trace.Master).
	Trace *Trace
	// Start, when set, starts a master of m2m-ssh's own at ControlPath
	// when ControlMaster asks to be one (yes, ask, auto, autoask) and
	// none listens there, and returns once it listens or with the reason
	// it could not: the session then rides it. Nil connects directly.
	Start func(ctx context.Context) error

	mu     sync.Mutex
	direct Connect
	// rode is whether a session of ours rode the master: when a later
	// connect finds none and cannot connect directly, the shared
	// connection ended under us, and that is what the user hears.
	rode bool
}

// A route is how one connect reaches the server: through a master's
// control connection, or directly when master is nil.
type route struct {
	master *mux.Client
	// why says, for a direct route, why no master is used ("" when
	// none is configured); masterErr is the master's failure, if any.
	why       string
	masterErr error
}

// route decides how this connect goes. It is the one place that does:
// ride the master at ControlPath when one is alive and ControlMaster
// lets ssh ride it (no, auto, autoask); with none there, start one and
// ride it when ControlMaster asks to be one and Start is set; else
// connect directly. A socket
// that is not to be trusted is refused outright, not bypassed: the user
// is to hear that their ControlPath is unsafe.
func (s *Sharing) route(ctx context.Context) (route, error) {
	t := s.Target
	switch {
	case t.ControlPath == "":
		return route{}, nil
	case !t.ControlMaster.Rides() && s.Start == nil:
		// ssh -M would listen there instead; with a live master there it
		// gives up sharing and connects directly, as m2m-ssh does.
		return route{why: "ControlMaster " + t.ControlMaster.String() + " asks to start a master, which m2m-ssh does not; connecting directly"}, nil
	}
	dctx, cancel := context.WithTimeout(ctx, MasterDialTimeout)
	defer cancel()
	c, err := mux.Dial(dctx, t.ControlPath)
	if err = s.traceMaster(dctx, c, err); err != nil && c != nil {
		c.Close()
	}
	var se *mux.SocketError
	switch {
	case err == nil:
		return route{master: c}, nil
	case errors.As(err, &se):
		return route{}, err
	case errors.Is(err, mux.ErrNoMaster) && s.Start != nil && t.ControlMaster.Starts():
		return s.started(ctx)
	case errors.Is(err, mux.ErrNoMaster):
		return route{why: "no master is listening at " + t.ControlPath + "; connecting directly"}, nil
	case ctx.Err() != nil:
		return route{}, context.Cause(ctx)
	}
	// ssh too connects directly when a master's hello fails.
	return route{why: "the master at " + t.ControlPath + " did not answer as one; connecting directly", masterErr: err}, nil
}

// notShared is an error of Start that says the connection cannot be
// shared here (the master's own lock, socket, log or process) rather than
// that the server cannot be reached: the session connects directly.
type notShared interface{ NotShared() bool }

// started starts a master with Start, and rides it. Its failure is the
// session's: the master met what a direct connection would have met
// (and has said so with the same words, hint and verdict).
func (s *Sharing) started(ctx context.Context) (route, error) {
	if err := s.Start(ctx); err != nil {
		var ns notShared
		if errors.As(err, &ns) && ns.NotShared() {
			s.logger().Warn("cannot start a master to share the connection; connecting directly", "target", s.Target.Alias, "path", s.Target.ControlPath, "err", err, "hint", verdict.Hint(err))
			return route{why: "connecting directly"}, nil
		}
		return route{}, err
	}
	dctx, cancel := context.WithTimeout(ctx, MasterDialTimeout)
	defer cancel()
	c, err := mux.Dial(dctx, s.Target.ControlPath)
	if err != nil {
		return route{}, fmt.Errorf("the master started at %s does not answer: %w", s.Target.ControlPath, err)
	}
	return route{master: c}, nil
}

// traceMaster tells the Trace what the master is, after an alive check
// that only doctor pays for, and returns err or the check's failure.
func (s *Sharing) traceMaster(ctx context.Context, c *mux.Client, err error) error {
	if s.Trace == nil || s.Trace.Master == nil {
		return err
	}
	m := Master{Path: s.Target.ControlPath, Owner: socketOwner(s.Target.ControlPath)}
	if err == nil {
		m.Version = c.Version()
		m.PID, err = c.Check(ctx)
		m.Alive = err == nil
	}
	s.Trace.Master(m, err)
	return err
}

// Connect opens one session, through the master or directly; the bridge
// calls it to connect and to reconnect.
func (s *Sharing) Connect(ctx context.Context) (Remote, error) {
	rt, err := s.route(ctx)
	if err != nil {
		return nil, err
	}
	log := s.logger()
	if rt.master != nil {
		r, err := s.ride(ctx, rt.master)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		// As ssh does when the master refuses the session.
		rt = route{why: "the master at " + s.Target.ControlPath + " would not open the session; connecting directly", masterErr: err}
	}
	s.mu.Lock()
	rode := s.rode
	s.mu.Unlock()
	if rt.why != "" {
		if rt.masterErr != nil {
			log.Warn(rt.why, "target", s.Target.Alias, "err", rt.masterErr)
		} else {
			log.Info(rt.why, "target", s.Target.Alias)
		}
	}
	r, err := s.connectDirect(ctx)
	if err == nil {
		return r, nil
	}
	if s.Target.ControlPath != "" && s.Target.ControlMaster.Rides() && (rode || rt.masterErr != nil) && ctx.Err() == nil {
		return nil, &MasterGoneError{Path: s.Target.ControlPath, Alias: s.Target.Alias, Ended: rode, Err: rt.masterErr, Direct: err}
	}
	return nil, err
}

// ride opens the session on the master's control connection.
func (s *Sharing) ride(ctx context.Context, c *mux.Client) (Remote, error) {
	p := s.Program
	req := mux.SessionRequest{Command: p.Command, Subsystem: p.Subsystem, Env: environment(s.Target, s.logger()), Agent: wantsAgent(s.Target)}
	// The master opens a channel and starts the program: a round trip
	// to the server, bounded as a direct connection's setup is.
	timeout := s.Target.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := openShared(sctx, c, req)
	if err != nil {
		c.Close()
		return nil, &ChannelError{Alias: s.Target.Alias, Program: p, Err: err}
	}
	s.mu.Lock()
	s.rode = true
	s.mu.Unlock()
	s.logger().Info("riding the shared connection", "target", s.Target.Alias, "path", s.Target.ControlPath, "session", r.session.ID())
	return r, nil
}

// connectDirect is SSH with the Dialer Direct makes, made once.
func (s *Sharing) connectDirect(ctx context.Context) (Remote, error) {
	s.mu.Lock()
	direct := s.direct
	s.mu.Unlock()
	if direct == nil {
		d, err := s.Direct(ctx)
		if err != nil {
			return nil, err
		}
		if d.Trace == nil {
			d.Trace = s.Trace
		}
		direct = SSH(d, s.Program)
		s.mu.Lock()
		s.direct = direct
		s.mu.Unlock()
	}
	return direct(ctx)
}

func (s *Sharing) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Master is what a Trace is told of the master at ControlPath.
type Master struct {
	Path string
	// Owner is the socket's owner's uid, -1 when there is no socket.
	Owner int
	// Alive is whether it answered an alive check; Version is the
	// protocol version of its hello, PID its process id.
	Alive   bool
	Version uint32
	PID     uint32
}

// MasterGoneError is a session that could not be opened through the
// master at Path and not directly either: the master this session rode
// ended (Ended), or it failed (Err), and the direct connection failed
// too (Direct). Riders of a master that asked for a second factor land
// here: only logging in again brings the connection back.
type MasterGoneError struct {
	Path  string
	Alias string
	Ended bool
	// Err is why the master could not be used; nil when nobody listens.
	Err    error
	Direct error
}

func (e *MasterGoneError) Error() string {
	what := "the shared connection at " + e.Path + " ended"
	if !e.Ended && e.Err != nil {
		what = fmt.Sprintf("the shared connection at %s could not be used (%v)", e.Path, e.Err)
	}
	if e.Direct == nil {
		return what
	}
	return fmt.Sprintf("%s; log in again with `ssh -M -S %s -fN %s` (connecting directly failed: %v)", what, e.Path, e.Alias, e.Direct)
}

func (e *MasterGoneError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Direct} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Hint: the master is a login the user made; m2m-ssh cannot make it.
func (e *MasterGoneError) Hint() string {
	return fmt.Sprintf("start the shared connection again in a terminal (`ssh -M -S %s -fN %s`, or `ssh %s` with ControlMaster auto), then restart this MCP server in the host if it gave up", e.Path, e.Alias, e.Alias)
}

// Permanent is the direct connection's verdict: while it fails for a
// reason that waiting can change (the network) the bridge keeps trying,
// and each try looks for the master first; when it is refused (the
// second factor only the master had) nothing but a person can help, and
// every request is answered with why at once.
func (e *MasterGoneError) Permanent() bool {
	return verdict.Permanent(e.Direct)
}
