package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"golang.org/x/term"
)

// answerHost answers the host's first requests on stdin with err, as the
// bridge answers them when a session cannot start (bridge.Bridge.FailGrace
// for the first request, then until the host is quiet as long): err is
// the session's first connect, failed. A host that sends nothing, or
// closes stdin, is not waited for.
func answerHost(stdin io.Reader, stdout io.Writer, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), shutdownSignals...)
	defer stop()
	b := &bridge.Bridge{
		Name:    "m2m-ssh",
		Connect: func(context.Context) (transport.Remote, error) { return nil, err },
	}
	b.Run(ctx, stdin, stdout)
}

// answered reports whether err came from a bridge, which has answered the
// host with it already.
func answered(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.answered
}

// isTerminal reports whether r is a terminal, where a person rather than
// an MCP host is typing. /dev/null, a file or a pipe is not.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var tty bool
	// Control rather than Fd: Fd would put the file in blocking mode.
	rc.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) })
	return tty
}
