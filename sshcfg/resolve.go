package sshcfg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
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
	// home directory (from the password database, as ssh takes it),
	// login name and /etc/ssh/ssh_config. Relative Include paths in the
	// system file are taken from SystemConfig's directory. Tests set them.
	Home         string
	LocalUser    string
	SystemConfig string

	// Logger receives warnings about lines that cannot be honoured.
	// Nil discards them.
	Logger *slog.Logger

	// Exec runs the command of a Match exec criterion and reports
	// whether it exited with status 0. Nil runs it as ssh does, with
	// $SHELL -c (or /bin/sh), but for at most five seconds. Fuzzers and
	// tests set it so that configuration text cannot run commands.
	Exec func(command string) (bool, error)
	// Getenv looks up ${NAME} in paths and SHELL for Match exec. Nil
	// uses the process environment.
	Getenv func(name string) (string, bool)
	// Resolver looks names up for CanonicalizeHostname; nil is
	// net.DefaultResolver.
	Resolver Resolver
}

// defaultPort is what ssh uses when no Port is configured.
const defaultPort = 22

// maxHostLen is NI_MAXHOST less its NUL: no resolver takes a longer name,
// and it keeps Host pattern matching cheap.
const maxHostLen = 1024

// resolver holds one resolution: the local facts tokens draw on and the
// settings gathered so far, first value wins.
type resolver struct {
	opts      Options
	log       *slog.Logger
	home      string
	localUser string
	localHost string
	uid       string
	sysDir    string

	// alias is the host as given (originalhost, %n); host is what Host
	// lines match: the alias, then the resolved HostName in the final
	// pass that Match final asks for.
	alias     string
	host      string
	final     bool
	wantFinal bool
	reads     int

	cfg settings
	// files and blocks are what Trace reports.
	files  []string
	blocks []string
}

// Resolve returns the target that ssh would connect to for alias.
// An alias of the form user@host or ssh://[user@]host[:port] sets User
// (and Port) as ssh does.
func Resolve(alias string, o Options) (*Target, error) {
	r, err := newResolver(o)
	if err != nil {
		return nil, err
	}
	host, destUser, destPort, err := parseDestination(alias)
	if err != nil {
		return nil, err
	}
	r.alias, r.host = host, host
	for i, opt := range o.Options {
		ln, ok, err := r.lex(opt, "command line", i+1)
		if !ok && err == nil {
			err = errors.New("empty option")
		}
		if err == nil {
			err = r.apply(ln, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("-o %q: %w", opt, err)
		}
	}
	// ssh takes user@ and a URI's port only when -o did not set them.
	if _, ok := r.cfg.str["user"]; !ok && destUser != "" {
		r.cfg.setStr("user", destUser)
	}
	if _, ok := r.cfg.str["port"]; !ok && destPort != "" {
		r.cfg.setStr("port", destPort)
	}
	// ssh refuses shell metacharacters in names from its command line
	// (they end up in ProxyCommand and Match exec); names from files
	// are trusted.
	if len(host) > maxHostLen {
		return nil, fmt.Errorf("host name is longer than %d bytes", maxHostLen)
	}
	if !validHostname(host) {
		return nil, fmt.Errorf("host name %q contains invalid characters", host)
	}
	if u, ok := r.cfg.str["user"]; ok && !validRemoteUser(u) {
		return nil, fmt.Errorf("remote user name %q contains invalid characters", u)
	}
	if err := r.readConfigs(); err != nil {
		return nil, err
	}
	hostname := host
	if h, ok := r.cfg.str["hostname"]; ok {
		if hostname, err = (tokens{'h': host}).expand(h, false, nil); err != nil {
			return nil, fmt.Errorf("HostName: %w", err)
		}
	}
	if len(hostname) > maxHostLen {
		return nil, fmt.Errorf("HostName is longer than %d bytes", maxHostLen)
	}
	// ssh lowercases names but leaves addresses to canonicalization.
	r.canonicalDefaults()
	wasAddr := isAddr(hostname, r.cfg.str["addressfamily"])
	if !wasAddr {
		hostname = lower(hostname)
	}
	if hostname, err = r.canonicalizeHost(hostname, wasAddr); err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	// Canonicalization re-reads the configuration with Match canonical
	// (the same pass as Match final) true, as ssh does.
	if r.cfg.str["canonicalizehostname"] != "no" || r.wantFinal {
		r.cfg.str["hostname"] = hostname
		r.host, r.final = hostname, true
		if err := r.readConfigs(); err != nil {
			return nil, err
		}
	}
	return r.target(hostname)
}

func newResolver(o Options) (*resolver, error) {
	r := &resolver{opts: o, log: o.Logger, home: o.Home, localUser: o.LocalUser}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.home == "" || r.localUser == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("local user: %w", err)
		}
		if r.home == "" {
			r.home = u.HomeDir
		}
		if r.localUser == "" {
			r.localUser = u.Username
		}
	}
	sys := o.SystemConfig
	if sys == "" {
		sys = "/etc/ssh/ssh_config"
	}
	r.opts.SystemConfig = sys
	r.sysDir = filepath.Dir(sys)
	r.uid = strconv.Itoa(os.Getuid())
	h, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("local host name: %w", err)
	}
	r.localHost = h
	r.cfg.str = map[string]string{}
	r.cfg.explicit = map[string]bool{}
	return r, nil
}

func (r *resolver) getenv(name string) (string, bool) {
	if r.opts.Getenv != nil {
		return r.opts.Getenv(name)
	}
	return os.LookupEnv(name)
}

// maxFileSize bounds what is read of one file: configuration files are
// small, and an Include of a glob like /proc/* must not read gigabytes.
const maxFileSize = 256 << 10

// A source is one file being read and how ssh reads it.
type source struct {
	path string
	// user is set for ~/.ssh/config, -F and what they include: relative
	// Include paths are taken from ~/.ssh and "~" is allowed.
	user bool
	// neverMatch is set for files included from an inactive block: their
	// Host and Match lines never activate anything.
	neverMatch bool
	depth      int
	active     *bool
}

// userFile is the user's own config file: -F's, or ~/.ssh/config.
func (r *resolver) userFile() string {
	if f := r.opts.ConfigFile; f != "" {
		if lower(f) == "none" {
			return ""
		}
		return f
	}
	return filepath.Join(r.home, ".ssh", "config")
}

func (r *resolver) readConfigs() error {
	active := true
	if f := r.opts.ConfigFile; f != "" {
		if lower(f) == "none" {
			return nil
		}
		found, err := r.readFile(source{path: f, user: true, active: &active})
		if err == nil && !found {
			err = fs.ErrNotExist
		}
		if err != nil {
			return fmt.Errorf("cannot read config file %s: %w", f, err)
		}
		return nil
	}
	userFile := filepath.Join(r.home, ".ssh", "config")
	r.checkPerm(userFile)
	if _, err := r.readFile(source{path: userFile, user: true, active: &active}); err != nil {
		r.log.Warn("cannot read config file", "file", userFile, "err", err)
	}
	active = true
	if _, err := r.readFile(source{path: r.opts.SystemConfig, active: &active}); err != nil {
		r.log.Warn("cannot read config file", "file", r.opts.SystemConfig, "err", err)
	}
	return nil
}

// checkPerm warns where ssh would refuse a file: it must not be writable
// by group or others. (The owner check needs the uid; ssh's "not root and
// not you" rarely differs from this in practice.)
func (r *resolver) checkPerm(path string) {
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 != 0 {
		r.log.Warn("ssh refuses this file: bad permissions (writable by group or others)", "file", path)
	}
}

// readFile processes one file. found is false when it does not exist.
func (r *resolver) readFile(src source) (found bool, err error) {
	f, fi, err := regularfile.Open(src.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if fi != nil && fi.IsDir() {
		return true, nil // ssh reads nothing from a directory and carries on
	}
	if err != nil {
		// A pipe or device is refused, not read: it could block or
		// never end (ssh would wait on it forever).
		return true, err
	}
	defer f.Close()
	if !slices.Contains(r.files, src.path) {
		r.files = append(r.files, src.path)
	}
	data, err := regularfile.ReadOpen(f, fi, src.path, maxFileSize)
	if err != nil {
		return true, err
	}
	for i, text := range strings.Split(string(data), "\n") {
		ln, ok, err := r.lex(text, src.path, i+1)
		if err != nil {
			if ln.keyword == "host" || ln.keyword == "match" {
				*src.active = false // as for any unreadable block start
			}
			r.warn(ln, err)
			continue
		}
		if !ok {
			continue
		}
		if err := r.apply(ln, &src); err != nil {
			r.warn(ln, err)
		}
	}
	return true, nil
}

func (r *resolver) lex(text, file string, num int) (*line, bool, error) {
	kw, rest, ok, err := lexLine(text)
	return &line{file: file, num: num, keyword: kw, rest: rest}, ok, err
}

func (r *resolver) warn(ln *line, err error) {
	r.log.Warn("ignoring configuration line: "+err.Error(), "file", ln.file, "line", ln.num)
}

func lower(s string) string { return strings.ToLower(s) }

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
