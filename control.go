package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
)

// controlWait bounds a control request to a master: a connect, a hello
// and one answer on a local socket.
const controlWait = 10 * time.Second

// controlFlag is ssh's -O, for check and exit.
var controlFlag = &cli.StringFlag{Name: "O", Usage: "`check` that the shared connection's master for ALIAS runs, or make it exit, as 'ssh -O check|exit'"}

// controlCommand is "m2m-ssh control ALIAS check|exit", ssh -O's two
// requests for the master at ALIAS's ControlPath.
func controlCommand() *cli.Command {
	return &cli.Command{
		Name:      "control",
		Usage:     "ask the shared connection's master at ALIAS's ControlPath whether it runs (check) or to end (exit), as 'ssh -O'",
		ArgsUsage: "[user@]ALIAS check|exit",
		Flags:     flags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(errors.New("control takes an ALIAS and check or exit"))
			}
			return controlAction(c, c.Args().Get(1))
		},
	}
}

// controlAction sends op (check or exit) to the master of the alias on
// c's command line, and prints what ssh -O prints.
func controlAction(c *cli.Context, op string) error {
	if op != "check" && op != "exit" {
		return usageError(fmt.Errorf("unknown control request %q: use check or exit", op))
	}
	s, _, err := loggedSession(c)
	if err != nil {
		return err
	}
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		return err
	}
	if t.ControlPath == "" {
		return hinted{fmt.Errorf("%s has no ControlPath", s.alias), "set ControlPath (and ControlMaster auto) for the host in the ssh config, or give -o ControlPath=PATH"}
	}
	ctx, cancel := context.WithTimeout(c.Context, controlWait)
	defer cancel()
	m, err := mux.Dial(ctx, t.ControlPath)
	if err != nil {
		if errors.Is(err, mux.ErrNoMaster) {
			return hinted{fmt.Errorf("no master is running at %s", t.ControlPath), "m2m-ssh starts one when ControlMaster is auto and an MCP server for the host runs"}
		}
		return err
	}
	defer m.Close()
	switch op {
	case "check":
		pid, err := m.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "Master running (pid=%d) at %s\n", pid, t.ControlPath)
	case "exit":
		if err := m.Exit(ctx); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "Exit request sent to the master at %s\n", t.ControlPath)
	}
	return nil
}
