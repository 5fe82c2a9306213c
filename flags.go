package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/bridge"
	"github.com/urfave/cli/v2"
)

// The flags of m2m-mcp-server-ssh-client keep its names and defaults; in
// alias mode only the ones given explicitly apply.
const (
	defaultSeedHost       = "localhost"
	defaultSeedPort       = 8022
	defaultSeedUser       = "mcp"
	defaultSeedClientKey  = "~/.ssh/m2m_mcp_server_ssh_client"
	defaultSeedKnownHosts = "~/.ssh/known_hosts"
	defaultKeyServerPort  = 8000
)

// The flags, by what they are about. A subcommand takes the groups it
// uses (commands.go), and the command-line grammar (grammar.go) accepts
// a flag only where it applies. A new flag goes into the group it is
// about; a new group into the subcommands that use it.

// sshFlags are OpenSSH's own options, spelt as ssh spells them.
func sshFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "F", Usage: "read this ssh config `FILE` instead of ~/.ssh/config (and skip the system one); none reads no file", TakesFile: true},
		&cli.StringSliceFlag{Name: "o", Usage: "an ssh_config option, as `Key=Value` (repeatable)"},
		&cli.StringSliceFlag{Name: "i", Usage: "an identity (private key) `FILE`, offered first (repeatable)", TakesFile: true},
		&cli.StringFlag{Name: "J", Usage: "connect through these jump hosts, as `[user@]host[:port],...` or aliases (ProxyJump)"},
		&cli.BoolFlag{Name: "A", Usage: "forward the agent to the remote (ForwardAgent yes)"},
		&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Usage: "SSH server port", Value: defaultSeedPort, DefaultText: "the config's; 8022 in seed mode"},
		&cli.StringFlag{Name: "username", Aliases: []string{"l"}, Usage: "SSH user", Value: defaultSeedUser, DefaultText: "the config's; mcp in seed mode"},
	}
}

// programFlags say what runs on the remote.
func programFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "subsystem", Usage: "start this SSH subsystem instead of a shell or command", Value: ""},
	}
}

// sessionFlags shape a running session: restoring it, and its limits.
func sessionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "reconnect-timeout", Usage: "how long a request waits for a lost session to come back before it is answered with an error", Value: 30 * time.Second},
		&cli.IntFlag{Name: "max-reconnects", Usage: "tries in a row to restore a lost session before giving up; 0 ends the session at the first loss", Value: bridge.DefaultRetries},
		&cli.StringFlag{Name: "max-frame", Usage: "the longest JSON-RPC message carried either way, as `SIZE`: bytes, or a number with KiB, MiB or GiB (64MiB = 67108864); a longer one is discarded and its request answered with an error", Value: "64MiB"},
	}
}

// seedFlags are m2m-mcp-server-ssh-client's, with its names; their
// defaults hold in seed mode only (no ALIAS: --host).
func seedFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "host", Usage: "SSH server host; gives seed mode, with the defaults of m2m-mcp-server-ssh-client, instead of an ALIAS", Value: defaultSeedHost, DefaultText: "localhost, in seed mode"},
		&cli.StringFlag{Name: "client-key", Usage: "private key `FILE`; generated when missing in seed mode", Value: defaultSeedClientKey, TakesFile: true, DefaultText: defaultSeedClientKey + " in seed mode; none with an ALIAS"},
		&cli.StringFlag{Name: "known-hosts", Usage: "known_hosts `FILE`", Value: defaultSeedKnownHosts, TakesFile: true, DefaultText: defaultSeedKnownHosts + " in seed mode; the config's UserKnownHostsFile with an ALIAS"},
		&cli.BoolFlag{Name: "disable-host-key-checking", Usage: "accept any host key (unsafe: anyone on the path can impersonate the server)"},
	}
}

// keyFlags unlock keys: what logging in needs beyond the config.
func keyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "passphrase", Usage: "passphrase of the private key (M2M_SSH_PASSPHRASE keeps it out of process listings)"},
	}
}

// keyServerOptions reach m2m-mcp-server-ssh-server's key server, whose
// key is pinned in a known_hosts file of m2m-ssh's (so resolve shows it).
func keyServerOptions() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "use-key-server", Usage: "fetch the server's key and register ours with its key server (seed mode)"},
		&cli.IntFlag{Name: "key-server-port", Usage: "port of the key server's plain-HTTP endpoint", Value: defaultKeyServerPort},
		&cli.IntFlag{Name: "key-server-https-port", Usage: "port of the key server's HTTPS endpoint, always tried first", Value: 443},
		&cli.StringFlag{Name: "key-server-ca", Usage: "PEM `FILE` of the CA that signed the key server's HTTPS certificate, trusted besides the system's", TakesFile: true},
		&cli.BoolFlag{Name: "key-server-insecure-http", Usage: "allow plain HTTP to a key server on another machine (anyone on the path could substitute the server's key)"},
	}
}

// logFlags say where the log goes and how much of it.
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Usage: "DEBUG, INFO, WARNING, ERROR or CRITICAL", Value: "INFO"},
		&cli.StringFlag{Name: "log-file", Usage: "append the log to this `FILE` instead of stderr (for hosts that hide stderr)", TakesFile: true},
	}
}

// flags are a connection's: every group.
func flags() []cli.Flag {
	return groups(sshFlags, programFlags, sessionFlags, seedFlags, keyFlags, keyServerOptions, logFlags)
}

// groups joins flag groups, in order.
func groups(gs ...func() []cli.Flag) []cli.Flag {
	var fs []cli.Flag
	for _, g := range gs {
		fs = append(fs, g()...)
	}
	return fs
}

// minFrame is the smallest --max-frame: below it even an initialize
// result would not fit.
const minFrame = 1 << 10

// parseSize reads a --max-frame SIZE: a number of bytes, or a whole number
// followed by KiB, MiB or GiB (binary units; the case of the unit does not
// matter, and "K", "KB", "M", "MB", "G", "GB" mean the same).
func parseSize(s string) (int, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"kib", 10}, {"kb", 10}, {"k", 10}, {"mib", 20}, {"mb", 20}, {"m", 20}, {"gib", 30}, {"gb", 30}, {"g", 30}, {"b", 0}}
	num, shift := strings.TrimSpace(strings.ToLower(s)), uint(0)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = strings.TrimSpace(rest), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > math.MaxInt>>shift {
		return 0, fmt.Errorf("--max-frame %q is not a size: give bytes, or a number with KiB, MiB or GiB, as in 64MiB", s)
	}
	if n<<shift < minFrame {
		return 0, fmt.Errorf("--max-frame %q is under the smallest limit, 1KiB", s)
	}
	return int(n << shift), nil
}
