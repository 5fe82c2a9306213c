package sshcfg

import (
	"strconv"
	"strings"
	"time"
)

// Target is one SSH destination, resolved from a host alias, the ssh
// configuration files and the command line, with OpenSSH's defaults filled
// in. It is what the rest of m2m-ssh needs to reach the host; nothing
// downstream reads configuration files again.
//
// Fields hold OpenSSH's defaults when the configuration says nothing. Set
// reports whether a keyword was given explicitly, so that policies that
// differ from OpenSSH (a keepalive when none is configured, say) can tell
// "not set" apart from an explicit value.
type Target struct {
	// Alias is the name the user gave (OpenSSH's %n, "originalhost").
	Alias string
	// HostName is the host to connect to (OpenSSH's %h).
	HostName string
	Port     int
	User     string

	// IdentityFiles are key file paths, with ~ and tokens expanded, in
	// the order they are to be offered. Explicit ones (-i, --client-key,
	// IdentityFile) come first; OpenSSH's default list is used only when
	// none is configured.
	IdentityFiles    []string
	CertificateFiles []string
	IdentitiesOnly   bool
	// IdentityAgent is the agent socket: "" means SSH_AUTH_SOCK, "none"
	// disables the agent. ~, tokens and ${NAME} are expanded, and a
	// "$NAME" is read from the environment now ("none" when unset, as
	// ssh then finds no agent).
	IdentityAgent string

	// UserKnownHostsFiles have ~, tokens and ${NAME} expanded;
	// GlobalKnownHostsFiles only ~. Both are empty for "none".
	UserKnownHostsFiles   []string
	GlobalKnownHostsFiles []string
	// StrictHostKeyChecking is one of "yes", "no", "accept-new", "ask".
	StrictHostKeyChecking string
	HashKnownHosts        bool
	// HostKeyAlias is lowercased, as ssh does.
	HostKeyAlias string
	// HostKeyAlgorithms, Ciphers, MACs, KexAlgorithms,
	// PubkeyAcceptedAlgorithms, HostbasedAcceptedAlgorithms and
	// CASignatureAlgorithms are the comma-separated lists ssh would
	// propose, as ssh -G prints them: "+", "-", "^" and patterns applied
	// to OpenSSH 9.2's lists. They name algorithms OpenSSH knows, which
	// x/crypto may not implement.
	HostKeyAlgorithms           string
	Ciphers                     string
	MACs                        string
	KexAlgorithms               string
	PubkeyAcceptedAlgorithms    string
	HostbasedAcceptedAlgorithms string
	CASignatureAlgorithms       string

	// AddressFamily is "any", "inet" or "inet6". BindAddress and
	// BindInterface are as written, "" when unset: the local address
	// (or the interface whose address) a direct connection is made
	// from. ConnectionAttempts is how many times ssh tries a direct
	// connection, a second apart.
	AddressFamily      string
	BindAddress        string
	BindInterface      string
	ConnectionAttempts int

	// CanonicalizeHostname is "no", "yes" or "always"; HostName is
	// already canonicalized. The rest are as ssh -G shows them.
	CanonicalizeHostname        string
	CanonicalDomains            []string
	CanonicalizeMaxDots         int
	CanonicalizeFallbackLocal   bool
	CanonicalizePermittedCNAMEs []string

	// ConnectTimeout is zero when none is configured.
	ConnectTimeout time.Duration
	// ServerAliveInterval is zero when none is configured, except in
	// BatchMode, where ssh's default is 300 s.
	ServerAliveInterval time.Duration
	ServerAliveCountMax int

	// ProxyJump is the jump list as ssh -G prints it, "" for none.
	// ProxyCommand is as written, its tokens unexpanded, "" for none.
	ProxyJump    string
	ProxyCommand string
	ForwardAgent bool
	// ForwardAgentSocket is the socket to forward instead of the agent's,
	// when ForwardAgent names one.
	ForwardAgentSocket string

	// RemoteCommand has its tokens expanded, "" for none.
	RemoteCommand string
	// SetEnv holds NAME=VALUE pairs, SendEnv name patterns.
	SetEnv    []string
	SendEnv   []string
	BatchMode bool
	// LogLevel is ssh's name for the level: SILENT, FATAL, ERROR, INFO,
	// VERBOSE, DEBUG, DEBUG2 or DEBUG3.
	LogLevel string

	// PreferredAuthentications is the comma-separated list of methods
	// to try, in order; "" when not configured (OpenSSH's own order).
	PreferredAuthentications     string
	PubkeyAuthentication         bool
	PasswordAuthentication       bool
	KbdInteractiveAuthentication bool
	// NumberOfPasswordPrompts bounds the password and the
	// keyboard-interactive attempts, each.
	NumberOfPasswordPrompts int
	// KnownHostsCommand is as written, its tokens unexpanded ("" for
	// none): they are expanded for each host key it is run for.
	KnownHostsCommand string
	// CheckHostIP also looks the server's address up in known_hosts.
	CheckHostIP bool
	// pubkeyShown is PubkeyAuthentication as ssh -G prints it.
	pubkeyShown string
	// connTokens and getenv expand KnownHostsCommand when it runs,
	// once the host key is known.
	connTokens tokens
	getenv     func(string) (string, bool)

	// ControlPath is the socket of a shared connection, with ~, tokens
	// and ${NAME} expanded; "" for none.
	ControlPath string
	// ControlMaster says whether to ride a master at ControlPath, become
	// one, or both.
	ControlMaster ControlMaster
	// ControlPersist is whether a master outlives its last session, and
	// ControlPersistTimeout for how long it then waits idle (zero: until
	// it is told to exit), as readconf.c keeps the two.
	ControlPersist        bool
	ControlPersistTimeout time.Duration

	// explicit holds the lowercase keywords that were given a value.
	explicit map[string]bool
	// specs are the algorithm keywords' values as written, for Written.
	specs map[string]string
	// shown is what ssh -G prints where it differs from the fields.
	shown shown
	trace Trace
}

// shown keeps values in the form ssh -G prints them: paths it leaves
// unexpanded, and lists that "none" empties for use.
type shown struct {
	identityFiles    []string
	certificateFiles []string
	identityAgent    string
	userKnownHosts   []string
	globalKnownHosts []string
}

// Set reports whether keyword (any case) was given a value by the command
// line or a configuration file, rather than left at OpenSSH's default.
func (t *Target) Set(keyword string) bool {
	return t.explicit[lower(keyword)]
}

// Addr is the host:port to dial.
func (t *Target) Addr() string {
	return joinHostPort(t.HostName, t.Port)
}

// KnownHostsName is the name under which the host key is looked up and
// recorded in known_hosts, as OpenSSH forms it: HostKeyAlias verbatim
// when set (OpenSSH adds no port to an alias), else the lower-cased
// HostName, in "[host]:port" form when the port is not 22.
func (t *Target) KnownHostsName() string {
	if t.HostKeyAlias != "" {
		return t.HostKeyAlias
	}
	name := strings.ToLower(t.HostName)
	if t.Port == defaultPort || t.Port == 0 {
		return name
	}
	return "[" + name + "]:" + strconv.Itoa(t.Port)
}

// Trace says where a target's settings came from, for diagnostics: the
// configuration files read, in order, and the Host and Match lines whose
// blocks applied, as "file:line: Host pattern...".
type Trace struct {
	Files  []string
	Blocks []string
	// UserFile is the user's own file, read or not: -F's, or
	// ~/.ssh/config; "" for -F none. Hints name it as the place to
	// change.
	UserFile string
}

// Trace returns where the target's settings came from.
func (t *Target) Trace() Trace { return t.trace }
