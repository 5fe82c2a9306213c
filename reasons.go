package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
)

// configError gives an error from reading the ssh config a hint that
// names the file.
func configError(err error, file string) error {
	if errors.Is(err, fs.ErrNotExist) && file != "" {
		return hinted{err, "give -F an existing file, or -F none to read no config file"}
	}
	return err
}

// unknownHostError is a name that no Host block gave a HostName and that
// does not resolve: most often a typo of an alias, or of a subcommand.
type unknownHostError struct {
	name    string
	files   []string // the config files read
	user    string   // the user's own config file, where a Host block goes
	command string   // the rest of the command line, for "did you mean"
	err     error    // the DNS error
}

func (e *unknownHostError) Error() string {
	if len(e.files) == 0 {
		return fmt.Sprintf("cannot resolve hostname %s: no Host block matches it (no ssh config file was read)", e.name)
	}
	return fmt.Sprintf("cannot resolve hostname %s: no Host block in %s matches it", e.name, strings.Join(e.files, " or "))
}

func (e *unknownHostError) Unwrap() error { return e.err }

func (e *unknownHostError) Hint() string {
	// "help" and "version" are other tools' subcommands; m2m-ssh's are
	// flags, as ssh's are.
	switch strings.ToLower(e.name) {
	case "help":
		if sub, ok := subcommandLike(e.command); ok && !strings.Contains(e.command, " ") {
			return "did you mean 'm2m-ssh " + sub + " --help'?"
		}
		return "did you mean 'm2m-ssh --help'?"
	case "version":
		return "did you mean 'm2m-ssh --version'?"
	}
	if sub, ok := subcommandLike(e.name); ok {
		return "did you mean '" + strings.TrimSpace("m2m-ssh "+sub+" "+e.command) + "'?"
	}
	where := orUserConfig(e.user)
	return fmt.Sprintf("check the spelling, or add a 'Host %s' block with its HostName to %s ('m2m-ssh resolve %s' shows what it resolves to)", e.name, where, e.name)
}

// explainDial puts the true reason first for a failure to reach t: a name
// that matched no Host block and does not resolve is said to be unknown,
// rather than a DNS failure of a HostName nobody wrote.
func explainDial(t *sshcfg.Target, command string, err error) error {
	var de *transport.DialError
	var dns *net.DNSError
	if !errors.As(err, &de) || de.JumpFor != "" || !errors.As(err, &dns) {
		return err
	}
	if t == nil || t.HostName != strings.ToLower(t.Alias) || matchedBlock(t) {
		return err
	}
	return &unknownHostError{name: t.Alias, files: t.Trace().Files, user: t.Trace().UserFile, command: command, err: err}
}

// matchedBlock reports whether a Host or Match block other than the
// catch-all "Host *" applied to t.
func matchedBlock(t *sshcfg.Target) bool {
	for _, b := range t.Trace().Blocks {
		// "file:line: Host pattern..."
		if i := strings.Index(b, ": "); i >= 0 {
			b = b[i+2:]
		}
		if b = strings.TrimSpace(b); b != "Host *" && b != "Match all" {
			return true
		}
	}
	return false
}

// orUserConfig is file, or ~/.ssh/config when there is none to name.
func orUserConfig(file string) string {
	if file == "" {
		return "~/.ssh/config"
	}
	return file
}
