//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
	"github.com/machine-to-machine/m2m-ssh/master"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
)

// masterCommand is the hidden subcommand that runs a master: m2m-ssh
// starts itself with it, and nothing else should.
const masterCommand = "serve-master"

// maxSpec bounds the spec a master reads: a command line's worth of
// options and paths.
const maxSpec = 1 << 20

// masterSpec is what a master needs to dial as the m2m-ssh that starts it
// would have: the same alias, files and options, so that host keys,
// identities and jump hosts are the same. It travels on a pipe (it may
// hold the passphrase), never on the command line.
type masterSpec struct {
	Alias      string   `json:"alias"`
	Seed       bool     `json:"seed,omitempty"`
	ClientKey  string   `json:"client_key,omitempty"`
	ConfigFile string   `json:"config_file,omitempty"`
	Options    []string `json:"options,omitempty"`
	Passphrase []byte   `json:"passphrase,omitempty"`
	// Secrets are the starter's secret variables (M2M_SSH_KEY,
	// M2M_SSH_PASSPHRASE), which its environment does not carry: a
	// process's initial environment is readable for its whole life.
	Secrets     map[string]string `json:"secrets,omitempty"`
	LogLevel    string            `json:"log_level"`
	ControlPath string            `json:"control_path"`
	Persist     master.Persist    `json:"persist"`
}

// masterStart is the Start of transport.Sharing for t: it starts
// m2m-ssh's own master at t's ControlPath, for ControlPersist's time. It
// is nil when m2m-ssh is not to start one (see startsMaster).
func (s *session) masterStart(t *sshcfg.Target, logger *slog.Logger) func(ctx context.Context) error {
	ok, why := startsMaster(t)
	if ok && s.keyServer != nil {
		// The key server's exchange is the starter's to make, before
		// each direct connection; a master would not make it.
		ok, why = false, "--use-key-server registers keys before each connection, which a master would not: m2m-ssh does not start one"
	}
	if !ok {
		if why != "" {
			logger.Info(why, "target", t.Alias)
		}
		return nil
	}
	persist := masterPersist(t)
	return func(ctx context.Context) error {
		st, err := s.masterStarter(t.ControlPath, persist, s.logLevel, logger)
		if err != nil {
			// No binary or state directory for a master: sharing's
			// failure, and the session connects directly.
			return master.Unshared(err)
		}
		_, err = st.Start(ctx)
		return err
	}
}

// startsMaster says whether m2m-ssh starts a master of its own for t:
// with a ControlPath and ControlMaster yes or auto. Not for ask and
// autoask, which have the master confirm every session through
// ssh-askpass: m2m-ssh's master has nobody to ask, and serving sessions
// unconfirmed would be less than the user asked for. why says so.
func startsMaster(t *sshcfg.Target) (ok bool, why string) {
	switch {
	case t.ControlPath == "" || !t.ControlMaster.Starts():
		return false, ""
	case t.ControlMaster == sshcfg.ControlMasterAsk || t.ControlMaster == sshcfg.ControlMasterAutoAsk:
		return false, "ControlMaster " + t.ControlMaster.String() + " has the master confirm each session, which m2m-ssh's own master cannot ask: it does not start one"
	}
	return true, ""
}

// masterStarter is the Starter of the master for controlPath: this
// binary again, with the spec of s.
func (s *session) masterStarter(controlPath string, persist master.Persist, logLevel string, logger *slog.Logger) (*master.Starter, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find m2m-ssh's own binary to start the shared connection: %w", err)
	}
	state, err := master.StateDir()
	if err != nil {
		return nil, err
	}
	logPath := master.LogPath(state, controlPath)
	spec, err := json.Marshal(masterSpec{Alias: s.alias, Seed: s.seed, ClientKey: s.clientKey,
		ConfigFile: s.opts.ConfigFile, Options: s.opts.Options, Passphrase: s.passphrase,
		LogLevel: logLevel, ControlPath: controlPath, Persist: persist, Secrets: secretVars()})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, masterCommand)
	cmd.Env = secretenv.Environ()
	// The master starts in this process's working directory, where the
	// config, keys, known_hosts and ProxyCommand that relative paths
	// name (-F ./ssh_config) are; it moves to / once it has dialled.
	return &master.Starter{Path: controlPath, Command: cmd, Spec: spec, LogPath: logPath, Logger: logger}, nil
}

// secretVars are the secret variables set in this process's environment.
func secretVars() map[string]string {
	vars := make(map[string]string)
	for _, name := range []string{secretenv.Key, secretenv.Passphrase} {
		if v, ok := os.LookupEnv(name); ok {
			vars[name] = v
		}
	}
	return vars
}

// isPipe reports whether fd is open on a pipe: what a starter passes, and
// not what the runtime or a shell may have left at that number.
func isPipe(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFIFO
}

// masterAction is the master process: it reads its spec, dials as the
// m2m-ssh that started it would, and serves the connection on ControlPath
// until ControlPersist's time runs out, it is told to exit, or the
// connection dies. Everything it says goes to its log; its one word to
// the starter is the readiness message.
func masterAction(c *cli.Context) error {
	if !isPipe(master.SpecFD) || !isPipe(master.ReadyFD) {
		return usageError(errors.New(masterCommand + " is started by m2m-ssh itself, with its spec and readiness pipes"))
	}
	// Inherited without close-on-exec: set it before anything is started
	// (a ProxyCommand), which would otherwise hold the readiness pipe open
	// and keep the starter from ever reading its end.
	syscall.CloseOnExec(master.SpecFD)
	syscall.CloseOnExec(master.ReadyFD)
	ready := os.NewFile(master.ReadyFD, "ready")
	specFile := os.NewFile(master.SpecFD, "spec")
	b, err := io.ReadAll(io.LimitReader(specFile, maxSpec+1))
	specFile.Close()
	var spec masterSpec
	switch {
	case err != nil:
	case len(b) > maxSpec:
		err = fmt.Errorf("the master's spec is over %d bytes", maxSpec)
	default:
		err = json.Unmarshal(b, &spec)
	}
	if err == nil && (spec.Alias == "" || spec.ControlPath == "") {
		err = errors.New("the master's spec names no host or no ControlPath")
	}
	for name, value := range spec.Secrets {
		// Only the secrets' own names; Setenv leaves the environment
		// that /proc shows as it was, and what the master starts gets
		// secretenv.Environ.
		if err == nil && secretenv.Is(name) {
			err = os.Setenv(name, value)
		}
	}
	level, lerr := parseLevel(spec.LogLevel)
	if err == nil {
		err = lerr
	}
	if err != nil {
		master.WriteFailure(ready, master.Unshared(err))
		return &exitError{code: 2, err: err}
	}
	state, err := master.StateDir()
	if err != nil {
		master.WriteFailure(ready, master.Unshared(err))
		return &exitError{code: 1, err: err}
	}
	logFile, err := master.OpenLog(master.LogPath(state, spec.ControlPath))
	if err != nil {
		master.WriteFailure(ready, master.Unshared(err))
		return &exitError{code: 1, err: err}
	}
	defer logFile.Close()
	// Its stderr is /dev/null: a crash is to be found in its log.
	debug.SetCrashOutput(logFile, debug.CrashOptions{})
	logger := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: level})).
		With("app", "m2m-ssh", "master", os.Getpid())

	// ControlPath is absolute from here on: the master listens after it
	// has left the starter's directory, in which a relative one is.
	path, err := filepath.Abs(spec.ControlPath)
	if err != nil {
		master.WriteFailure(ready, master.Unshared(err))
		return &exitError{code: 1, err: err}
	}
	s := &session{alias: spec.Alias, seed: spec.Seed, clientKey: spec.ClientKey, passphrase: spec.Passphrase,
		opts: sshcfg.Options{ConfigFile: spec.ConfigFile, Options: spec.Options, Logger: logger}}
	ctx, stop := signal.NotifyContext(c.Context, shutdownSignals...)
	defer stop()
	// What forwards the agent on the connection Dial made, readied
	// there, before the master leaves the starter's directory (a relative
	// agent socket is in it): Run calls ForwardAgent after Dial, in the
	// same goroutine.
	var forward func(ssh.Channel)
	m := &master.Master{Path: path, Persist: spec.Persist, Logger: logger,
		ForwardAgent: func(*ssh.Client) func(ssh.Channel) { return forward },
		Dial: func(ctx context.Context) (*ssh.Client, error) {
			t, err := sshcfg.Resolve(s.alias, s.opts)
			if err != nil {
				return nil, err
			}
			d, err := s.dialer(ctx, t, logger)
			if err != nil {
				return nil, err
			}
			logger.Info("connecting", "target", s.alias, "addr", d.Target.Addr(), "user", d.Target.User)
			c, err := d.Dial(ctx)
			if err == nil {
				forward = d.AgentForwarder(c)
				// A master must not hold a directory the host may
				// want to remove or unmount.
				if err := os.Chdir("/"); err != nil {
					logger.Warn("cannot leave the starter's working directory", "err", err)
				}
			}
			return c, err
		}}
	err = m.Run(ctx, ready)
	if errors.Is(err, master.ErrIdle) || errors.Is(err, master.ErrTerminated) || errors.Is(err, context.Canceled) {
		return nil
	}
	var lost *master.ConnectionError
	if errors.As(err, &lost) {
		return &exitError{code: 1}
	}
	return &exitError{code: 1, err: err}
}

// masterPlan says, for doctor, how m2m-ssh would start a master for t:
// "" when t asks for none.
func masterPlan(t *sshcfg.Target) string {
	if ok, _ := startsMaster(t); !ok {
		return ""
	}
	p := masterPersist(t)
	plan := "m2m-ssh starts a master of its own there, which ends with its last session"
	switch {
	case p.Forever:
		plan = "m2m-ssh starts a master of its own there, which stays until 'm2m-ssh control " + t.Alias + " exit' (ControlPersist yes)"
	case p.Idle > 0:
		plan = "m2m-ssh starts a master of its own there, which stays " + p.Idle.String() + " after its last session (ControlPersist)"
	}
	if state, err := master.StateDir(); err == nil {
		plan += ", logging to " + master.LogPath(state, t.ControlPath)
	}
	return plan
}

// masterLogLine is doctor's detail line for a live master at path: the
// log of m2m-ssh's masters there, when there is one.
func masterLogLine(path string) []string {
	state, err := master.StateDir()
	if err != nil {
		return nil
	}
	log := master.LogPath(state, path)
	if _, err := os.Stat(log); err != nil {
		return nil // ssh -M's, or one that never logged
	}
	return []string{"m2m-ssh's masters at this path log to " + log}
}

// masterPersist is ControlPersist as the master keeps it.
func masterPersist(t *sshcfg.Target) master.Persist {
	return master.Persist{Forever: t.ControlPersist && t.ControlPersistTimeout == 0, Idle: t.ControlPersistTimeout}
}
