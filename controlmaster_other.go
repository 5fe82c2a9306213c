//go:build !unix

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
)

const masterCommand = "serve-master"

// masterAction: a master needs Unix sockets and descriptor passing.
func masterAction(*cli.Context) error {
	return errors.New("connection sharing is not supported on this platform")
}

// masterStart is nil: m2m-ssh connects directly.
func (s *session) masterStart(*sshcfg.Target, *slog.Logger) func(ctx context.Context) error {
	return nil
}

// masterPlan: m2m-ssh starts no master here.
func masterPlan(*sshcfg.Target) string { return "" }

// masterLogLine: no master of m2m-ssh's own here.
func masterLogLine(string) []string { return nil }
