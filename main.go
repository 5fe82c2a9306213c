// Command m2m-ssh makes an MCP server on another machine feel installed
// locally: an MCP host starts it as a stdio server, and it carries the
// host's JSON-RPC session over SSH to the server on the other side.
//
//	m2m-ssh [flags] [user@]ALIAS [flags] [--] [REMOTE COMMAND...]
//	m2m-ssh --host HOST [--port 8022] [--username mcp] ...
//	m2m-ssh resolve|doctor|config|demo [flags] ...
//
// The subcommands and the flags each takes are one table (commands.go,
// flags.go); grammar.go reads the command line against it.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/machine-to-machine/m2m-ssh/internal/logsink"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// version, commit and date are stamped by the release build
// (go run ./release) with -ldflags "-X main.version=v1.2.3 ...". Left
// empty, they come from the module version and VCS stamps that go build
// and go install record (buildVersion).
var (
	version = ""
	commit  = ""
	date    = ""
)

func main() {
	// One processor unless the user says otherwise: m2m-ssh moves one
	// stream each way, and with more the runtime wakes idle processors to
	// hunt for work on every frame, which costs CPU and latency and buys
	// nothing (docs/benchmarks.md).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A host that closed m2m-ssh's stderr must not kill it at the first
	// log line. With SIGPIPE notified, a write to a closed pipe fails with
	// EPIPE instead (the os package raises SIGPIPE itself for fds 1 and 2
	// unless it is handled): the log sink then discards the log, and the
	// bridge reads EPIPE on stdout as the host gone. Notified, not
	// ignored: an ignored signal stays ignored in the programs m2m-ssh
	// starts (ProxyCommand), which expect SIGPIPE to end them.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	stderr := logsink.New(os.Stderr)
	code := run(os.Args, transport.Stdio(os.Stdin), transport.Stdio(os.Stdout), stderr)
	stderr.Flush(exitFlush)
	os.Exit(code)
}

// run is main with its inputs and outputs passed in, for tests.
//
// When stdin is not a terminal, an MCP host may be reading stdout: then
// nothing but JSON-RPC frames go there. Help goes to stderr, and an error
// that keeps a session from starting, a usage error included, is also
// answered to the host's first requests (answerHost), so that the host
// shows why rather than "connection closed".
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	terminal := isTerminal(stdin)
	table := subcommands()
	inv, err := parseCommandLine(table, args[1:])
	if err != nil {
		err = helpHint(usageError(err), inv.sub)
		code := report(stderr, err)
		if !terminal && inv.serves() {
			answerHost(stdin, stdout, err)
		}
		return code
	}
	out := stdout
	if inv.help && !terminal {
		out = stderr
	}
	app := newApp(table, stdin, out, stderr)
	err = helpHint(app.Run(inv.argv(args[0])), inv.sub)
	closeLog(app, err)
	code := report(stderr, err)
	if err != nil && !terminal && inv.serves() && !answered(err) {
		answerHost(stdin, stdout, err)
	}
	return code
}

func newApp(table []subcommand, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "m2m-ssh",
		Usage:     "bridge an MCP host's stdio session to an MCP server over SSH",
		UsageText: "m2m-ssh [flags] [user@]ALIAS [flags] [--] [REMOTE COMMAND...]\nm2m-ssh --host HOST [--port 8022] [--username mcp] [flags]\nm2m-ssh SUBCOMMAND [flags] [user@]ALIAS ...",
		Description: "ALIAS is resolved through the OpenSSH configuration (~/.ssh/config, or -F) like 'ssh ALIAS'.\n" +
			"Flags go before or after ALIAS, as ssh's do; the remote command starts at the first word after ALIAS that is not a flag, or after --.\n" +
			"Without ALIAS (seed mode), --host and the other flags of m2m-mcp-server-ssh-client apply, with its defaults.\n" +
			"Flags given explicitly override the configuration.",
		Version:                   versionLine(),
		Reader:                    stdin,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		Flags:                     table[0].Flags,
		Action:                    table[0].Action,
		DisableSliceFlagSeparator: true, // -o ProxyJump=a,b is one value
		HideHelpCommand:           true,
		// The grammar (grammar.go) has refused what urfave/cli would;
		// should it still refuse something, one line says so, not the
		// whole help.
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return usageError(err) },
		// Errors are printed once, with their hints, by report.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, s := range table[1:] {
		s.OnUsageError = app.OnUsageError
		app.Commands = append(app.Commands, s.Command)
	}
	return app
}

// buildVersion is the version alone: stamped, else the module's, else
// the VCS revision, else dev.
func buildVersion() string {
	v, _ := versionOf(stamp{version, commit, date}, readBuildInfo())
	return v
}

// versionLine is what --version prints after "m2m-ssh version".
func versionLine() string {
	v, more := versionOf(stamp{version, commit, date}, readBuildInfo())
	if more != "" {
		return v + " (" + more + ")"
	}
	return v
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// stamp is what the release build sets with -ldflags.
type stamp struct{ version, commit, date string }

// versionOf is the version and what to say after it in parentheses:
//   - a release's stamp: its version, then its commit and date;
//   - else the module's version (go install pkg@v1.2.3, or the
//     pseudo-version go build derives from VCS), with the commit and date
//     when the build recorded them;
//   - else, in a build from a checkout without a module version, the
//     VCS revision ("-dirty" when the tree was modified) and its time;
//   - else dev.
func versionOf(st stamp, bi *debug.BuildInfo) (v, more string) {
	rev, when := st.commit, st.date
	if rev == "" && bi != nil {
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
	}
	// A commit is named by its first 12 hex digits, as git describe
	// does in a large repository.
	if hash, rest, _ := strings.Cut(rev, "-"); len(hash) > 12 {
		rev = strings.TrimSuffix(hash[:12]+"-"+rest, "-")
	}
	v = st.version
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	switch {
	case v == "" && rev != "":
		return rev, when
	case v == "":
		return "dev", ""
	case rev != "" && when != "":
		return v, "commit " + rev + ", " + when
	case rev != "":
		return v, "commit " + rev
	}
	return v, ""
}

// exitError carries an exit status through cli.App.Run.
type exitError struct {
	code int
	err  error // nil when there is nothing to print
	// answered is set when a bridge has answered the host's requests
	// with err already.
	answered bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
