package sshcfg

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// Options says where configuration comes from besides the alias.
type Options struct {
	// ConfigFile is ssh's -F: it replaces ~/.ssh/config and the system
	// file is not read. "none" reads no file at all. Empty means the
	// user's and the system's files.
	ConfigFile string
	// Options are "Key=Value" or "Key Value" lines, as given to ssh -o.
	// They take precedence over every file.
	Options []string

	// Home, LocalUser and SystemConfig default to the running user's
	// home directory, login name and /etc/ssh/ssh_config. Tests set them.
	Home         string
	LocalUser    string
	SystemConfig string

	// Logger receives warnings about lines that cannot be honoured.
	// Nil discards them.
	Logger *slog.Logger
}

// Resolve returns the target that ssh would connect to for alias.
// An alias of the form user@host sets User as ssh does.
func Resolve(alias string, o Options) (*Target, error) {
	panic("not implemented")
}

func lower(s string) string { return strings.ToLower(s) }

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
