package main

import (
	"errors"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
)

// commands are m2m-ssh's own subcommands. Each takes the same flags as a
// connection, so that "m2m-ssh resolve -F cfg alias" shows what
// "m2m-ssh -F cfg alias" would use.
func commands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "resolve",
			Usage:     "print the options ALIAS resolves to, in the format of 'ssh -G ALIAS'",
			ArgsUsage: "[user@]ALIAS",
			Flags:     flags(),
			Action:    resolveAction,
		},
	}
}

// resolveAction prints the resolved target so that it can be compared
// with 'ssh -G ALIAS' line by line.
func resolveAction(c *cli.Context) error {
	logger, err := newLogger(c.App.ErrWriter, c.String("log-level"))
	if err != nil {
		return usageError(err)
	}
	if c.NArg() > 1 {
		return usageError(errors.New("resolve takes one ALIAS"))
	}
	s, err := parseSession(c)
	if err != nil {
		return usageError(err)
	}
	s.opts.Logger = logger
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		return err
	}
	return t.WriteConfig(c.App.Writer)
}
