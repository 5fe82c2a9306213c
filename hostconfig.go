package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
)

// installers are the commands that start m2m-ssh from a package cache,
// by the M2M_SSH_INSTALLER value the package's launcher sets (release/npm,
// release/python): there the binary's own path is a cache's, which the
// runner may replace at any time, so config prints the runner instead.
var installers = map[string][]string{
	"npx":  {"npx", "-y", "m2m-ssh"},
	"uvx":  {"uvx", "m2m-ssh"},
	"pipx": {"pipx", "run", "m2m-ssh"},
}

// takesFile reports whether f's value is a file (its TakesFile, which
// also makes the shells complete a file name): made absolute, since the
// MCP host starts m2m-ssh in a directory of its own choosing.
func takesFile(f cli.Flag) bool {
	switch f := f.(type) {
	case *cli.StringFlag:
		return f.TakesFile
	case *cli.StringSliceFlag:
		return f.TakesFile
	}
	return false
}

// configAction prints what makes an MCP host start m2m-ssh for ALIAS
// with the flags given here.
func configAction(c *cli.Context) error {
	logger, err := newLogger(c)
	if err != nil {
		return usageError(err)
	}
	host, ok := findMCPHost(c.String("for"))
	if !ok {
		return usageError(fmt.Errorf("unknown --for %q: use %s", c.String("for"), strings.Join(mcpHostNames(), ", ")))
	}
	if c.NArg() == 0 && !c.IsSet("host") {
		return usageError(errors.New("config needs an ALIAS (or --host)"))
	}
	s, err := parseSession(c)
	if err != nil {
		return usageError(err)
	}
	s.opts.Logger = logger
	// Resolving catches a misspelt alias or a broken config file now
	// rather than in the MCP host.
	t, err := sshcfg.Resolve(s.alias, s.opts)
	if err != nil {
		return configError(err, s.opts.ConfigFile)
	}

	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find m2m-ssh's own path: %w", err)
	}
	if p, err := filepath.EvalSymlinks(bin); err == nil {
		bin = homebrewOpt(p)
	}
	if strings.Contains(bin, "go-build") && os.Getenv("M2M_SSH_INSTALLER") == "" {
		fmt.Fprintf(c.App.ErrWriter, "m2m-ssh: warning: %s is a temporary build of 'go run'; install m2m-ssh (go install) and run its config command instead\n", bin)
	}

	args, err := hostArgs(c)
	if err != nil {
		return err
	}
	if c.IsSet("passphrase") {
		fmt.Fprintln(c.App.ErrWriter, "m2m-ssh: warning: --passphrase is left out: set M2M_SSH_PASSPHRASE in the server's env instead, or load the key into ssh-agent")
	}

	server := stdioServer{Command: bin, Args: args}
	if runner, ok := installers[os.Getenv("M2M_SSH_INSTALLER")]; ok {
		server = stdioServer{Command: runner[0], Args: append(runner[1:len(runner):len(runner)], args...)}
	}
	// MCP hosts start servers with a short list of variables (Claude
	// Desktop and Cursor pass HOME, PATH, USER and little else):
	// SSH_AUTH_SOCK must be given for the agent to be found.
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && usesAuthSock(t) {
		server.Env = map[string]string{"SSH_AUTH_SOCK": sock}
	}
	return host.write(c.App.Writer, serverName(t.Alias), server)
}

// homebrewOpt turns a path in Homebrew's Cellar (PREFIX/Cellar/m2m-ssh/
// 1.2.3/bin/m2m-ssh), which the next upgrade removes, into the opt link
// Homebrew keeps to the current version (PREFIX/opt/m2m-ssh/bin/m2m-ssh).
func homebrewOpt(bin string) string {
	dir, file := filepath.Split(bin)
	keg := filepath.Dir(filepath.Dir(filepath.Clean(dir))) // PREFIX/Cellar/m2m-ssh
	if filepath.Base(filepath.Dir(keg)) != "Cellar" || filepath.Base(filepath.Clean(dir)) != "bin" {
		return bin
	}
	opt := filepath.Join(filepath.Dir(filepath.Dir(keg)), "opt", filepath.Base(keg), "bin", file)
	if _, err := os.Stat(opt); err != nil {
		return bin
	}
	return opt
}

// usesAuthSock reports whether the agent is found through SSH_AUTH_SOCK
// for t rather than an IdentityAgent of its own.
func usesAuthSock(t *sshcfg.Target) bool {
	return t.IdentityAgent == "" || t.IdentityAgent == "SSH_AUTH_SOCK"
}

// hostArgs are m2m-ssh's arguments for the MCP host: the flags given
// explicitly (files made absolute, the passphrase left out), the alias and
// the remote command.
func hostArgs(c *cli.Context) ([]string, error) {
	var args []string
	for _, f := range flags() {
		name := f.Names()[0]
		if name == "passphrase" || !c.IsSet(name) {
			continue
		}
		flag := "--" + name
		if len(name) == 1 {
			flag = "-" + name
		}
		var values []string
		switch f.(type) {
		case *cli.BoolFlag:
			if c.Bool(name) {
				args = append(args, flag)
			}
			continue
		case *cli.StringSliceFlag:
			values = c.StringSlice(name)
		default:
			values = []string{fmt.Sprint(c.Value(name))}
		}
		for _, v := range values {
			if takesFile(f) && v != "none" {
				abs, err := filepath.Abs(expandHome(v))
				if err != nil {
					return nil, err
				}
				v = abs
			}
			args = append(args, flag, v)
		}
	}
	if a := c.Args().Slice(); len(a) > 0 {
		args = append(args, a[0])
		rest := a[1:]
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		if len(rest) > 0 {
			args = append(append(args, "--"), rest...)
		}
	}
	return args, nil
}
