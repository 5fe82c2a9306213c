package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/machine-to-machine/m2m-ssh/internal/logsink"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
)

// report prints err as "m2m-ssh: error: ..." with any hints, and returns
// the exit status.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err == nil {
		return code
	}
	fmt.Fprintf(stderr, "m2m-ssh: error: %v\n", err)
	if h := verdict.Hint(err); h != "" {
		fmt.Fprintf(stderr, "m2m-ssh: hint: %s\n", h)
	}
	return code
}

// hinted is an error with a hint of main's own.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }
func (h hinted) Hint() string  { return h.hint }

// usageStatus is the exit status of a command line m2m-ssh cannot take,
// as for ssh and most commands: 2.
const usageStatus = 2

// usageError is a command line m2m-ssh cannot take. Without a hint of its
// own, run gives it one that points at the subcommand's help.
func usageError(err error) error {
	var ee *exitError
	if errors.As(err, &ee) && ee.code == usageStatus {
		return err
	}
	return &exitError{code: usageStatus, err: err}
}

// helpHint gives a usage error without a hint the one that points at
// sub's help.
func helpHint(err error, sub subcommand) error {
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != usageStatus || ee.err == nil || verdict.Hint(err) != "" {
		return err
	}
	help := "'m2m-ssh --help'"
	if sub.Name != "" {
		help = "'m2m-ssh " + sub.Name + " --help'"
	}
	return &exitError{code: usageStatus, err: hinted{ee.err, "see " + help}}
}

// levelCritical is the Python client's CRITICAL, above slog's ERROR.
const levelCritical = slog.LevelError + 4

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(s) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "CRITICAL":
		return levelCritical, nil
	}
	return 0, fmt.Errorf("unknown --log-level %q: use DEBUG, INFO, WARNING, ERROR or CRITICAL", s)
}

// newLogger is the logger the command line asks for: --log-level, to
// stderr, which MCP hosts keep as the server's log (stdout belongs to the
// protocol), or with --log-file to that file, for hosts that hide stderr.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	l, err := parseLevel(c.String("log-level"))
	if err != nil {
		return nil, err
	}
	w, err := logOutput(c)
	if err != nil {
		return nil, err
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("app", "m2m-ssh"), nil
}

// logFileKey is where the open --log-file is kept in cli.App.Metadata,
// so that run can report the final error there too and close it.
const logFileKey = "logfile"

// exitFlush bounds the wait at exit for the log to be written: the last
// lines (the error and its hint) reach a sink that takes them, and one
// that does not (a pipe nobody reads) cannot hold the exit.
const exitFlush = 200 * time.Millisecond

// logFile is an open --log-file and the sink in front of it, through which
// everything is written: a slow disk never holds the bridge.
type logFile struct {
	f    *os.File
	sink *logsink.Writer
}

// logOutput is where diagnostics go: --log-file, appended to and created
// readable by its owner only (logs name hosts and users), or stderr.
func logOutput(c *cli.Context) (io.Writer, error) {
	path := c.String("log-file")
	if path == "" {
		return c.App.ErrWriter, nil
	}
	if lf, ok := c.App.Metadata[logFileKey].(*logFile); ok {
		return lf.sink, nil
	}
	// O_NONBLOCK: a FIFO nobody reads fails at once (ENXIO) instead of
	// holding the open forever; one that is read is written through the
	// poller. A regular file ignores it.
	f, err := os.OpenFile(expandHome(path), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if errors.Is(err, syscall.ENXIO) {
		return nil, hinted{fmt.Errorf("cannot open --log-file: %s is a FIFO nobody reads", path), "start its reader first, or give a regular file"}
	}
	if err != nil {
		return nil, hinted{fmt.Errorf("cannot open --log-file: %w", err), "give a file in a directory you can write to"}
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	lf := &logFile{f: f, sink: logsink.New(f)}
	c.App.Metadata[logFileKey] = lf
	return lf.sink, nil
}

// closeLog reports err in the --log-file as well, and closes it once what
// was logged is written (within exitFlush).
func closeLog(app *cli.App, err error) {
	lf, ok := app.Metadata[logFileKey].(*logFile)
	if !ok {
		return
	}
	report(lf.sink, err)
	if lf.sink.Flush(exitFlush) {
		lf.f.Close()
	}
}

// logWriter is logOutput once newLogger has succeeded.
func logWriter(c *cli.Context) io.Writer {
	w, err := logOutput(c)
	if err != nil {
		return c.App.ErrWriter
	}
	return w
}
