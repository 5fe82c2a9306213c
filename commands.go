package main

import (
	"errors"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
)

// subcommand is one row of m2m-ssh's command line: the cli.Command
// (its name, "" for a connection, its help and the flags it takes), what
// follows its flags, and whether it serves an MCP host on stdio. The
// grammar (grammar.go) accepts a flag only for the rows that list it.
type subcommand struct {
	*cli.Command
	args argShape
	// serves is set for what an MCP host starts: its stdout carries
	// JSON-RPC frames only, and an error before the session is answered
	// to the host's first requests.
	serves bool
}

// argShape is what a subcommand takes after its options.
type argShape int

const (
	noArgs       argShape = iota
	aliasOnly             // [user@]ALIAS
	aliasCommand          // [user@]ALIAS [-- REMOTE COMMAND...]
)

// subcommands is the one list of m2m-ssh's command line: a connection
// first, then the subcommands. A new subcommand is a new row here with
// the flag groups (flags.go) it takes; the grammar, the help and the
// usage errors follow from it.
func subcommands() []subcommand {
	return []subcommand{
		{Command: &cli.Command{Name: "", Flags: append(flags(), controlFlag), Action: connectAction}, args: aliasCommand, serves: true},
		{Command: &cli.Command{
			Name:      "resolve",
			Usage:     "print the options ALIAS resolves to, in the format of 'ssh -G ALIAS'",
			ArgsUsage: "[user@]ALIAS",
			Flags:     groups(sshFlags, seedFlags, keyServerOptions, logFlags),
			Action:    resolveAction,
		}, args: aliasOnly},
		{Command: &cli.Command{
			Name:      "doctor",
			Usage:     "check each step of reaching ALIAS's MCP server, and say which one fails",
			ArgsUsage: "[user@]ALIAS [-- REMOTE COMMAND...]",
			Description: "Checks, in order: the ssh config, DNS, the TCP connect, proxies, the SSH handshake and host key,\n" +
				"the identities to offer, authentication, the session channel, the remote's stdout and the MCP initialize.\n" +
				"The exit status is 0 only when every check passes.",
			Flags:  groups(sshFlags, programFlags, seedFlags, keyFlags, keyServerOptions, logFlags),
			Action: doctorAction,
		}, args: aliasCommand},
		{Command: &cli.Command{
			Name:      "config",
			Usage:     "print what makes an MCP host (Claude Desktop, Claude Code, Cursor, VS Code, Gemini CLI, Codex) start m2m-ssh for ALIAS",
			ArgsUsage: "[user@]ALIAS [-- REMOTE COMMAND...]",
			Description: "The flags given here are carried into the host's configuration, with file paths made absolute;\n" +
				"the binary's absolute path is used, and SSH_AUTH_SOCK is passed on when the agent is used.\n" +
				"--for claude-code prints the 'claude mcp add' command line, then the JSON 'claude mcp add-json' takes;\n" +
				"--for codex prints a table of ~/.codex/config.toml; the others print JSON.",
			Flags:  append(flags(), &cli.StringFlag{Name: "for", Usage: "the MCP host: " + strings.Join(mcpHostNames(), ", "), Value: "claude"}),
			Action: configAction,
		}, args: aliasCommand},
		{Command: &cli.Command{
			Name:  "demo",
			Usage: "run a throwaway SSH server with an MCP server behind it on 127.0.0.1, and reach it",
			Description: "Started by an MCP host (stdin is not a terminal), m2m-ssh demo serves the host's session,\n" +
				"so 'npx @modelcontextprotocol/inspector --cli m2m-ssh demo --method tools/list' works.\n" +
				"Started from a terminal, it plays the host itself and shows each step with its timing.",
			Flags:  append(logFlags(), &cli.BoolFlag{Name: "walkthrough", Usage: "show the walkthrough even when stdin is not a terminal"}),
			Action: demoAction,
		}, args: noArgs, serves: true},
		{Command: controlCommand(), args: aliasCommand},
		{Command: &cli.Command{
			Name:   masterCommand,
			Usage:  "run the shared connection's master (m2m-ssh starts it itself)",
			Hidden: true,
			Action: masterAction,
		}, args: noArgs},
	}
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
	if c.NArg() == 0 && !c.IsSet("host") {
		// As doctor and config: without one, it would print seed
		// mode's defaults as if they were an answer.
		return usageError(errors.New("resolve needs an ALIAS (or --host)"))
	}
	s, err := parseSession(c)
	if err != nil {
		return usageError(err)
	}
	s.opts.Logger = logger
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		return configError(err, s.opts.ConfigFile)
	}
	return t.WriteConfig(c.App.Writer)
}
