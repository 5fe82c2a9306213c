package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
)

// shutdownSignals end a session cleanly: every request answered, the
// remote program stopped. SIGHUP is among them because a host, a terminal
// or a process manager that goes away sends it, and its default kills the
// process with nothing answered.
var shutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// lastWords bounds each wait, for the logger and then for the log to be
// written, of the line m2m-ssh writes before it exits by itself: a log
// nobody reads must not keep it alive.
const lastWords = 50 * time.Millisecond

// flusher is a log that holds lines back (logsink.Writer): the last one
// must be written before the process exits, or it is lost.
type flusher interface {
	Flush(wait time.Duration) bool
}

// onSignals returns a context that ends at the first shutdown signal, with
// the signal as its cause. From then on the process exits by itself if it
// has not ended within bridge.ShutdownBound, and at once at a second
// signal; its last words go to the logger, whose output is log. stop
// releases the signals and the timer.
func onSignals(parent context.Context, logger *slog.Logger, log io.Writer) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, shutdownSignals...)
	done := make(chan struct{})
	go func() {
		var first os.Signal
		select {
		case first = <-sigs:
		case <-done:
			return
		}
		logger.Info("shutting down", "signal", signalName(first))
		cancel(fmt.Errorf("received %s", signalName(first)))
		late := time.NewTimer(bridge.ShutdownBound)
		defer late.Stop()
		select {
		case s := <-sigs:
			exitNow(logger, log, 128+signalNumber(s), "a second signal came while shutting down; exiting at once", "signal", signalName(s))
		case <-late.C:
			exitNow(logger, log, bridge.ExitStatus, "shutting down took too long; exiting", "bound", bridge.ShutdownBound)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// exitNow logs msg, waiting at most lastWords for the logger and as long
// again for log to write it, and exits.
func exitNow(logger *slog.Logger, log io.Writer, code int, msg string, args ...any) {
	logged := make(chan struct{})
	go func() {
		logger.Warn(msg, args...)
		close(logged)
	}()
	select {
	case <-logged:
	case <-time.After(lastWords):
	}
	if f, ok := log.(flusher); ok {
		f.Flush(lastWords)
	}
	os.Exit(code)
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// signalNumber is s's number, for the exit status a shell shows for a
// process it ended (128+n).
func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return 0
}
