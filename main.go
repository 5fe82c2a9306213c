// Command m2m-ssh makes an MCP server on another machine feel installed
// locally: an MCP host starts it as a stdio server, and it carries the
// host's JSON-RPC session over SSH to the server on the other side.
//
//	m2m-ssh [flags] [user@]ALIAS [-- REMOTE COMMAND...]
//	m2m-ssh --host HOST [--port 8022] [--username mcp] ...
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
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.Run(args)
	closeLog(app, err)
	return report(stderr, err)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "m2m-ssh",
		Usage:     "bridge an MCP host's stdio session to an MCP server over SSH",
		UsageText: "m2m-ssh [flags] [user@]ALIAS [-- REMOTE COMMAND...]\nm2m-ssh --host HOST [--port 8022] [--username mcp] [flags]",
		Description: "ALIAS is resolved through the OpenSSH configuration (~/.ssh/config, or -F) like 'ssh ALIAS'.\n" +
			"Without ALIAS, --host and the other flags of m2m-mcp-server-ssh-client apply, with its defaults.\n" +
			"Flags given explicitly override the configuration.",
		Version:                   versionLine(),
		Reader:                    stdin,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		Flags:                     append(flags(), controlFlag),
		Action:                    connectAction,
		Commands:                  commands(),
		DisableSliceFlagSeparator: true, // -o ProxyJump=a,b is one value
		HideHelpCommand:           true,
		Suggest:                   true,
		// Errors are printed once, with their hints, by report.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// buildVersion is the version: stamped, else the module's (go install
// pkg@v1.2.3, or the pseudo-version go build derives from VCS), else dev.
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what --version prints after "m2m-ssh version": the
// version, and the commit and its date when they are known.
func versionLine() string {
	rev, when := commit, date
	if rev == "" {
		var dirty bool
		if bi, ok := debug.ReadBuildInfo(); ok {
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
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
	}
	if hash, rest, _ := strings.Cut(rev, "-"); len(hash) > 12 {
		rev = strings.TrimSuffix(hash[:12]+"-"+rest, "-")
	}
	switch {
	case rev != "" && when != "":
		return fmt.Sprintf("%s (commit %s, %s)", buildVersion(), rev, when)
	case rev != "":
		return fmt.Sprintf("%s (commit %s)", buildVersion(), rev)
	}
	return buildVersion()
}

// exitError carries an exit status through cli.App.Run.
type exitError struct {
	code int
	err  error // nil when there is nothing to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
