package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"github.com/urfave/cli/v2"
)

// session is what the command line asks for: whom to reach and what to run.
type session struct {
	alias      string
	seed       bool // no alias: the Python client's flags and defaults
	opts       sshcfg.Options
	program    transport.Program
	passphrase []byte
	clientKey  string // seed mode: generated when missing
	keyServer  *keyServer
	logLevel   string // --log-level, for a master m2m-ssh starts
	loginShell bool   // resolved: neither a command nor RemoteCommand
}

// minHeapLimit is the least soft heap limit m2m-ssh sets: its idle heap
// (a few MiB) and a burst of ordinary frames fit several times over, and
// with the binary and stacks it stays within the promise of 3 × the frame
// limit + 16 MiB even for the smallest limits.
const minHeapLimit = 16 << 20

func connectAction(c *cli.Context) error {
	if op := c.String(controlFlag.Name); op != "" {
		return controlAction(c, op) // -O check|exit, as ssh
	}
	s, logger, err := loggedSession(c)
	if err != nil {
		return err
	}
	if c.Duration("reconnect-timeout") <= 0 {
		return usageError(errors.New("--reconnect-timeout must be positive"))
	}
	maxFrame, err := parseSize(c.String("max-frame"))
	if err != nil {
		return usageError(err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The promise is 3 × the frame limit + 16 MiB of RSS whatever
		// arrives; a soft limit on the heap at 3 × the frame limit
		// (the rest is the binary and stacks) has the collector keep
		// the garbage of a large frame's read inside it.
		// Not under minHeapLimit: a small limit must not have the
		// collector run without end.
		debug.SetMemoryLimit(max(3*int64(maxFrame), minHeapLimit))
	}

	ctx, stop := onSignals(c.Context, logger, logWriter(c))
	defer stop()
	b := &bridge.Bridge{
		Name:             s.alias,
		Connect:          s.connector(logger),
		Logger:           logger,
		Stderr:           logWriter(c),
		ReconnectTimeout: c.Duration("reconnect-timeout"),
		Retries:          c.Int("max-reconnects"),
		MaxFrame:         maxFrame,
		LoginShell:       func() bool { return s.loginShell },
	}
	if b.Retries <= 0 {
		b.Retries = -1
	}
	start := time.Now()
	code, err := b.Run(ctx, c.App.Reader, c.App.Writer)
	logger.Info("disconnected", "target", s.alias, "after", time.Since(start).Round(time.Millisecond), "status", code)
	return &exitError{code: code, err: err, answered: true}
}

// loggedSession is the session on c's command line with the logger its
// flags ask for: the start of every command that connects. Its errors
// are usage errors.
func loggedSession(c *cli.Context) (*session, *slog.Logger, error) {
	logger, err := newLogger(c)
	if err != nil {
		return nil, nil, usageError(err)
	}
	s, err := parseSession(c)
	if err != nil {
		return nil, nil, usageError(err)
	}
	s.opts.Logger = logger
	return s, logger, nil
}

// parseSession reads the mode, target options and program from the
// command line. Explicit flags come first in sshcfg.Options because, as in
// OpenSSH, the first value obtained for a keyword wins.
func parseSession(c *cli.Context) (*session, error) {
	s := &session{passphrase: []byte(c.String("passphrase")), logLevel: c.String("log-level")}
	exclusive := 0
	for _, f := range []string{"known-hosts", "disable-host-key-checking", "use-key-server"} {
		if c.IsSet(f) {
			exclusive++
		}
	}
	if exclusive > 1 {
		return nil, errors.New("--known-hosts, --disable-host-key-checking and --use-key-server exclude each other")
	}

	args := c.Args().Slice()
	var rest []string
	if len(args) > 0 {
		if c.IsSet("host") {
			return nil, fmt.Errorf("give either an ALIAS (%q) or --host, not both", args[0])
		}
		s.alias, rest = args[0], args[1:]
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
	} else {
		s.seed = true
		s.alias = c.String("host")
	}

	var o []string
	set := func(key, value string) { o = append(o, key+"="+value) }
	for _, f := range c.StringSlice("i") {
		set("IdentityFile", f)
	}
	if c.IsSet("port") {
		if p := c.Int("port"); p < 1 || p > 65535 {
			// Said of the flag given, not of the -o it becomes.
			return nil, fmt.Errorf("--port %d is not a port: give 1 to 65535", p)
		}
		set("Port", strconv.Itoa(c.Int("port")))
	}
	if c.IsSet("username") {
		set("User", c.String("username"))
	}
	if c.IsSet("client-key") {
		set("IdentityFile", c.String("client-key"))
	}
	if c.IsSet("known-hosts") {
		set("UserKnownHostsFile", c.String("known-hosts"))
	}
	if c.Bool("disable-host-key-checking") {
		set("StrictHostKeyChecking", "no")
	}
	if c.IsSet("J") {
		set("ProxyJump", c.String("J"))
	}
	if c.Bool("A") {
		set("ForwardAgent", "yes")
	}
	o = append(o, c.StringSlice("o")...)
	s.opts.ConfigFile = c.String("F")
	if s.seed {
		// The Python client's defaults, where nothing above set them.
		set("Port", strconv.Itoa(defaultSeedPort))
		set("User", defaultSeedUser)
		s.clientKey = expandHome(c.String("client-key"))
		set("IdentityFile", s.clientKey)
		set("UserKnownHostsFile", c.String("known-hosts"))
		set("IdentitiesOnly", "yes")
		set("StrictHostKeyChecking", "yes")
		if s.opts.ConfigFile == "" {
			s.opts.ConfigFile = "none"
		}
	}
	s.opts.Options = o
	if err := s.useKeyServer(c); err != nil {
		return nil, err
	}

	s.program.Subsystem = c.String("subsystem")
	if len(rest) > 0 {
		if s.program.Subsystem != "" {
			return nil, errors.New("give either --subsystem or a remote command, not both")
		}
		s.program.Command = strings.Join(rest, " ")
	}
	return s, nil
}

// connector resolves the target on the first connect, so that a failure
// there reaches the host as a JSON-RPC error like any other failure to
// connect. Identities and host keys are loaded only when a connection is
// made directly: riding a master needs neither.
func (s *session) connector(logger *slog.Logger) transport.Connect {
	var sh *transport.Sharing
	return func(ctx context.Context) (transport.Remote, error) {
		if sh == nil {
			t, err := sshcfg.Resolve(s.alias, s.opts)
			if err != nil {
				return nil, configError(err, s.opts.ConfigFile)
			}
			p := s.program
			if p.Subsystem == "" && p.Command == "" {
				p.Command = t.RemoteCommand
			}
			s.loginShell = p.Subsystem == "" && p.Command == ""
			logger.Info("connecting", "target", s.alias, "addr", t.Addr(), "user", t.User, "program", p.String())
			sh = &transport.Sharing{Target: t, Program: p, Logger: logger, Start: s.masterStart(t, logger),
				Direct: func(ctx context.Context) (*transport.Dialer, error) { return s.dialer(ctx, t, logger) }}
		}
		r, err := sh.Connect(ctx)
		if err != nil {
			return nil, explainDial(sh.Target, s.program.Command, err)
		}
		return r, nil
	}
}

func (s *session) dialer(ctx context.Context, t *sshcfg.Target, logger *slog.Logger) (*transport.Dialer, error) {
	if s.seed {
		created, err := agentauth.EnsureKey(s.clientKey, agentauth.IdentityOptions{Passphrase: s.passphrase})
		if err != nil {
			return nil, err
		}
		if created && s.keyServer != nil {
			logger.Info("generated a client key", "key", s.clientKey)
		} else if created {
			logger.Info("generated a client key; authorize its .pub on the server", "key", s.clientKey)
		}
	}
	if s.keyServer != nil {
		if err := s.keyServer.prepare(ctx, t, s.clientKey, s.passphrase, logger); err != nil {
			return nil, err
		}
	}
	// AllowNone: with nothing to offer, the login says so, after the
	// name, the connect and the host key have been checked.
	idOpts := agentauth.IdentityOptions{Passphrase: s.passphrase, Logger: logger, AllowNone: true}
	ids, err := agentauth.LoadIdentities(t, idOpts)
	if err != nil {
		return nil, err
	}
	ho := agentauth.HostKeyOptions{Logger: logger}
	hk, err := agentauth.NewHostKeyChecker(t, ho)
	if err != nil {
		ids.Close()
		return nil, err
	}
	return s.newDialer(t, ids, hk, idOpts, ho), nil
}

// newDialer is the dialer for t, its jump hosts resolved with the same
// files and options; the bridge and doctor share it.
func (s *session) newDialer(t *sshcfg.Target, ids *agentauth.Identities, hk *agentauth.HostKeyChecker, idOpts agentauth.IdentityOptions, ho agentauth.HostKeyOptions) *transport.Dialer {
	return &transport.Dialer{Target: t, Identities: ids, HostKeys: hk,
		Config: s.opts, IdentityOptions: idOpts, HostKeyOptions: ho, Logger: s.opts.Logger}
}

// expandHome expands a leading ~ from $HOME, as the Python client does.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}
