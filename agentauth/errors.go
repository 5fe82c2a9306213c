package agentauth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// AuthError reports that the server refused every identity offered. Its
// message contains "Authentication failed", the text users search for.
type AuthError struct {
	User string
	Host string // the name the user gave (the alias)
	// Offered are the identities offered, in order.
	Offered []Offered
	// Skipped are the key files that could not be used (bad permissions,
	// no passphrase, ...), for the hint.
	Skipped []error
	// TooManyTries: the server hung up after its MaxAuthTries, before
	// every identity could be tried.
	TooManyTries   bool
	IdentitiesOnly bool
	// Allowed are the methods the server said can continue; Partial
	// those it accepted as a first step (AuthenticationMethods).
	Allowed, Partial []string
	// Passwords and Kbdints count the password and keyboard-interactive
	// attempts the server refused.
	Passwords, Kbdints int
	// NobodyToAsk: the server takes a password or keyboard-interactive
	// answers, but no askpass program could be run.
	NobodyToAsk bool
	BatchMode   bool
	// Config is the ssh config file the target was read from, for the
	// hint ("" for ~/.ssh/config).
	Config string
	Err    error
}

// Offered describes one identity offered to the server.
type Offered struct {
	Type        string // ssh-ed25519, ssh-ed25519-cert-v01@openssh.com, ...
	Fingerprint string // SHA256:...
	Source      string // "agent /run/user/1000/ssh-agent.socket", a file path, "M2M_SSH_KEY"
}

func (o Offered) String() string {
	return fmt.Sprintf("%s %s (%s)", o.Type, o.Fingerprint, o.Source)
}

func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Authentication failed for %s@%s: ", e.User, e.Host)
	if len(e.Offered) == 0 {
		b.WriteString("no identity to offer")
	} else if containsString(e.Partial, methodPublickey) {
		b.WriteString("the server accepted a key as a first step, and wants another")
	} else if e.TooManyTries {
		b.WriteString("the server gave up (too many authentication failures) before trying all of: ")
		for i, o := range e.Offered {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(o.String())
		}
	} else {
		b.WriteString("the server refused every identity offered: ")
		for i, o := range e.Offered {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(o.String())
		}
	}
	if e.Passwords > 0 {
		fmt.Fprintf(&b, "; the password was refused (%s)", tries(e.Passwords))
	}
	if e.Kbdints > 0 {
		fmt.Fprintf(&b, "; the keyboard-interactive answers were refused (%s)", tries(e.Kbdints))
	}
	if len(e.Allowed) > 0 {
		fmt.Fprintf(&b, "; the server accepts %s", strings.Join(e.Allowed, ","))
	}
	for _, s := range e.Skipped {
		fmt.Fprintf(&b, "; not offered: %v", s)
	}
	// x/crypto's own words ("ssh: unable to authenticate, attempted
	// methods ...") say again what is said above, and name its package.
	if e.Err != nil && !errors.Is(e.Err, errNoMethods) && !strings.Contains(e.Err.Error(), "unable to authenticate") {
		msg := strings.TrimPrefix(e.Err.Error(), "ssh: handshake failed: ")
		fmt.Fprintf(&b, ": %s", strings.TrimPrefix(msg, "ssh: "))
	}
	return b.String()
}

func tries(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}

// interactiveAllowed reports whether the server would take a password
// or keyboard-interactive answers.
func (e *AuthError) interactiveAllowed() bool {
	for _, m := range e.Allowed {
		if m == methodPassword || m == methodKbdint {
			return true
		}
	}
	return false
}

func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what to try.
// Permanent reports that waiting does not change it: it is a verdict.
func (e *AuthError) Permanent() bool { return true }

func (e *AuthError) Hint() string {
	for _, s := range e.Skipped {
		if h := verdict.Hint(s); h != "" {
			return h
		}
	}
	switch {
	case e.Passwords > 0 || e.Kbdints > 0:
		return "check what the program in SSH_ASKPASS answers (the prompts are in the log at DEBUG), or log in with a key: ssh-add it, or set IdentityFile for " + e.Host
	case e.BatchMode && e.interactiveAllowed():
		return "BatchMode is on, so m2m-ssh asks for no password: log in with a key (ssh-add, IdentityFile), or turn BatchMode off for " + e.Host + " and set SSH_ASKPASS"
	case e.NobodyToAsk && e.interactiveAllowed():
		return "the server takes a password or keyboard-interactive answers, but " + askpassHint
	}
	if len(e.Offered) == 0 {
		return noIdentityHint(e.Host, e.Config)
	}
	if e.TooManyTries && !e.IdentitiesOnly {
		return fmt.Sprintf("the server allows few attempts (MaxAuthTries) and the agent offers many keys: set 'IdentityFile' to the right key and 'IdentitiesOnly yes' for %s in %s", e.Host, orUserConfig(e.Config))
	}
	return fmt.Sprintf("add one of these public keys to ~%s/.ssh/authorized_keys on %s, or point IdentityFile at the key the server accepts (check with 'ssh -v %s')", e.User, e.Host, e.Host)
}

// NoIdentitiesError is returned by LoadIdentities when nothing at all can
// be offered. Problems are the reasons each candidate was dropped.
type NoIdentitiesError struct {
	Problems []error
	// Config is the ssh config file read, for the hint ("" for
	// ~/.ssh/config).
	Config string
}

func (e *NoIdentitiesError) Error() string {
	if len(e.Problems) == 0 {
		return "Authentication failed: no identity to offer (no agent, no key file)"
	}
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return "Authentication failed: no identity to offer: " + strings.Join(msgs, "; ")
}

func (e *NoIdentitiesError) Unwrap() []error { return e.Problems }

// Hint says what to try.
// Permanent reports that waiting does not change it: it is a verdict.
func (e *NoIdentitiesError) Permanent() bool { return true }

func (e *NoIdentitiesError) Hint() string {
	for _, p := range e.Problems {
		if h := verdict.Hint(p); h != "" {
			return h
		}
	}
	return noIdentityHint("this host", e.Config)
}

// noIdentityHint says where an identity can come from; config is the ssh
// config file read.
func noIdentityHint(host, config string) string {
	return "load a key into ssh-agent (ssh-add), set IdentityFile for " + host + " in " + orUserConfig(config) + ", or give a key with -i, --client-key or M2M_SSH_KEY"
}

// orUserConfig is config, or ~/.ssh/config when none is named.
func orUserConfig(config string) string {
	if config == "" {
		return "~/.ssh/config"
	}
	return config
}

// configFile is the ssh config file t was read from, for hints.
func configFile(t *sshcfg.Target) string {
	if t == nil {
		return ""
	}
	return t.Trace().UserFile
}

// KeyFileError is a key file that cannot be used.
type KeyFileError struct {
	Path string
	// Reason is a short OpenSSH-like reason: "UNPROTECTED PRIVATE KEY
	// FILE", "passphrase protected", "not found", ...
	Reason string
	Err    error
	hint   string
}

func (e *KeyFileError) Error() string {
	msg := "key file " + e.Path + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// Hint says how to make the key usable.
// Permanent reports that waiting does not change it: it is a verdict.
func (e *KeyFileError) Permanent() bool { return true }

func (e *KeyFileError) Hint() string { return e.hint }

// HostKeyProblem says why a host key was refused.
type HostKeyProblem int

const (
	// HostUnknown: no key is known for the host.
	HostUnknown HostKeyProblem = iota + 1
	// HostKeyChanged: a different key of the same type is known.
	HostKeyChanged
	// HostKeyOtherType: keys of other types are known, not this one.
	HostKeyOtherType
	// HostKeyRevoked: the key is marked @revoked.
	HostKeyRevoked
	// HostCertInvalid: a certificate signed by a trusted CA that does
	// not hold for this host (principal, validity, type).
	HostCertInvalid
	// HostIPKeyChanged: another key of its type is known for the
	// address the host was reached at (CheckHostIP), the key known for
	// the host or the host new.
	HostIPKeyChanged
)

// KnownKey is a key line of a known_hosts file.
type KnownKey struct {
	File string
	Line int
	Type string
	// Fingerprint is the SHA256 fingerprint of the key.
	Fingerprint string
}

func (k KnownKey) String() string {
	return fmt.Sprintf("%s:%d (%s %s)", k.File, k.Line, k.Type, k.Fingerprint)
}

// HostKeyError is a refused host key. Its message contains "Host key
// verification failed", the text users search for.
type HostKeyError struct {
	Problem HostKeyProblem
	// Alias is the name the user gave; Name is the known_hosts name
	// ("host" or "[host]:port", HostKeyAlias honoured).
	Alias string
	Name  string
	// Address is the server's address as known_hosts names it, for
	// HostIPKeyChanged.
	Address string
	// Type and Fingerprint describe the key the server presented.
	Type        string
	Fingerprint string
	// Known are the lines holding the old keys (changed, other type) or
	// the revocation.
	Known []KnownKey
	// KnownHostsFile is where a trusted key would be written.
	KnownHostsFile string
	// ScanHost and ScanPort are what ssh-keyscan must be given to fetch
	// the key; empty when HostKeyAlias makes ssh-keyscan's line useless.
	ScanHost string
	ScanPort int
	// Unread are the known_hosts files that exist but were refused (not
	// a regular file, too large) or could not be read: the key may be
	// in one of them.
	Unread []error
	Err    error
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	b.WriteString("Host key verification failed: ")
	host := e.Name
	if e.Alias != "" && e.Alias != trimPort22(e.Name) {
		host = fmt.Sprintf("%s (%s)", e.Alias, e.Name)
	}
	switch e.Problem {
	case HostUnknown:
		fmt.Fprintf(&b, "host key for %s is not in known_hosts: the server presented %s %s", host, e.Type, e.Fingerprint)
	case HostKeyChanged:
		fmt.Fprintf(&b, "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ "+
			"the %s host key for %s is now %s, but %s holds a different one. "+
			"Someone could be eavesdropping on you right now (man-in-the-middle attack), or the host key has just been changed",
			e.Type, host, e.Fingerprint, knownList(e.Known))
	case HostKeyOtherType:
		fmt.Fprintf(&b, "%s presented a %s key %s, but known_hosts knows it only by other keys: %s",
			host, e.Type, e.Fingerprint, knownList(e.Known))
	case HostKeyRevoked:
		fmt.Fprintf(&b, "@@@ WARNING: REVOKED HOST KEY DETECTED! @@@ the %s host key %s presented by %s is marked as revoked in %s",
			e.Type, e.Fingerprint, host, knownList(e.Known))
	case HostCertInvalid:
		fmt.Fprintf(&b, "host certificate of %s (%s %s) is signed by a trusted authority but not valid for it", host, e.Type, e.Fingerprint)
	case HostIPKeyChanged:
		fmt.Fprintf(&b, "the %s host key for %s differs from the key for the IP address %s in %s (CheckHostIP)",
			e.Type, host, e.Address, knownList(e.Known))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.unreadMatters() {
		for _, u := range e.Unread {
			fmt.Fprintf(&b, "; known_hosts file not read: %v", u)
		}
	}
	return b.String()
}

// unreadMatters: only a missing key can be explained by a file not read.
func (e *HostKeyError) unreadMatters() bool {
	return len(e.Unread) > 0 && (e.Problem == HostUnknown || e.Problem == HostKeyOtherType)
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// Hint gives the command that would trust the key, or how to recover from
// a change.
// Permanent reports that waiting does not change it: it is a verdict.
func (e *HostKeyError) Permanent() bool { return true }

func (e *HostKeyError) Hint() string {
	alias := e.Alias
	if alias == "" {
		alias = trimPort22(e.Name)
	}
	switch e.Problem {
	case HostUnknown, HostKeyOtherType:
		h := ""
		if e.unreadMatters() {
			h = "UserKnownHostsFile and GlobalKnownHostsFile must name regular files you can read: fix the ones not read, or "
		}
		h += fmt.Sprintf("make sure %s is the key of %s (ask its administrator, or run 'ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub' on it), then ", e.Fingerprint, alias)
		if e.ScanHost != "" {
			scan := "ssh-keyscan"
			if e.ScanPort != 0 && e.ScanPort != 22 {
				scan += fmt.Sprintf(" -p %d", e.ScanPort)
			}
			h += fmt.Sprintf("run '%s %s >> %s', or ", scan, e.ScanHost, e.KnownHostsFile)
		}
		h += fmt.Sprintf("run 'ssh %s' once and answer yes, or set StrictHostKeyChecking accept-new for this host", alias)
		return h
	case HostKeyChanged:
		var files []string
		for _, k := range e.Known {
			if !containsString(files, k.File) {
				files = append(files, k.File)
			}
		}
		cmds := make([]string, len(files))
		for i, f := range files {
			cmds[i] = fmt.Sprintf("'ssh-keygen -R %s -f %s'", quoteIfNeeded(e.Name), f)
		}
		return fmt.Sprintf("if you know the host key was replaced, verify the new fingerprint %s with its administrator, remove the old key with %s and connect again", e.Fingerprint, strings.Join(cmds, " and "))
	case HostKeyRevoked:
		return "do not connect: the host presents a key its administrator revoked; contact them"
	case HostIPKeyChanged:
		return fmt.Sprintf("if the address %s now belongs to %s, remove its old key with 'ssh-keygen -R %s -f %s' and connect again; otherwise someone may be redirecting the connection", e.Address, alias, quoteIfNeeded(e.Address), e.Known[0].File)
	case HostCertInvalid:
		return "the host's certificate must name " + trimPort22(e.Name) + " as a principal and be within its validity period; ask its administrator to reissue it"
	}
	return ""
}

func knownList(ks []KnownKey) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, "[]*? ") {
		return `"` + s + `"`
	}
	return s
}
