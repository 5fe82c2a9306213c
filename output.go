package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(stderr, "m2m-ssh: hint: %s\n", h.Hint())
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

func usageError(err error) error {
	return &exitError{code: 2, err: hinted{err, "see 'm2m-ssh --help'"}}
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

// newLogger logs to stderr, which MCP hosts keep as the server's log;
// stdout belongs to the protocol.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("app", "m2m-ssh"), nil
}
