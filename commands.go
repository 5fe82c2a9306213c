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
		{
			Name:      "doctor",
			Usage:     "check each step of reaching ALIAS's MCP server, and say which one fails",
			ArgsUsage: "[user@]ALIAS [-- REMOTE COMMAND...]",
			Description: "Checks, in order: the ssh config, DNS, the TCP connect, proxies, the SSH handshake and host key,\n" +
				"authentication, the session channel, the remote's stdout and the MCP initialize.\n" +
				"The exit status is 0 only when every check passes.",
			Flags:  flags(),
			Action: doctorAction,
		},
		{
			Name:      "config",
			Usage:     "print the JSON that makes an MCP host (Claude Desktop, Cursor, VS Code) start m2m-ssh for ALIAS",
			ArgsUsage: "[user@]ALIAS [-- REMOTE COMMAND...]",
			Description: "The flags given here are carried into the JSON, with file paths made absolute;\n" +
				"the binary's absolute path is used, and SSH_AUTH_SOCK is passed on when the agent is used.",
			Flags:  append(flags(), &cli.StringFlag{Name: "for", Usage: "claude, cursor or vscode", Value: "claude"}),
			Action: configAction,
		},
		{
			Name:  "demo",
			Usage: "run a throwaway SSH server with an MCP server behind it on 127.0.0.1, and reach it",
			Description: "Started by an MCP host (stdin is not a terminal), m2m-ssh demo serves the host's session,\n" +
				"so 'npx @modelcontextprotocol/inspector --cli m2m-ssh demo --method tools/list' works.\n" +
				"Started from a terminal, it plays the host itself and shows each step with its timing.",
			Flags:  append(logFlags(), &cli.BoolFlag{Name: "walkthrough", Usage: "show the walkthrough even when stdin is not a terminal"}),
			Action: demoAction,
		},
		controlCommand(),
		{
			Name:   masterCommand,
			Usage:  "run the shared connection's master (m2m-ssh starts it itself)",
			Hidden: true,
			Action: masterAction,
		},
	}
}

// logFlags are the flags of commands that make no connection of their
// own choosing.
func logFlags() []cli.Flag {
	var fs []cli.Flag
	for _, f := range flags() {
		switch f.Names()[0] {
		case "log-level", "log-file":
			fs = append(fs, f)
		}
	}
	return fs
}

// resolveAction prints the resolved target so that it can be compared
// with 'ssh -G ALIAS' line by line.
func resolveAction(c *cli.Context) error {
	logger, err := newLogger(c)
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
