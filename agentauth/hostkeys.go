package agentauth

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// HostKeyOptions are the inputs to NewHostKeyChecker besides the target.
type HostKeyOptions struct {
	Logger *slog.Logger
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time

	// commandTimeout shortens knownHostsCommandTimeout in tests.
	commandTimeout time.Duration
}

// HostKeyChecker verifies a server's host key for one target under its
// known_hosts name, whatever address the connection was dialed at (a jump
// host or proxy command does not change whose key is expected).
type HostKeyChecker struct {
	t      *sshcfg.Target
	log    *slog.Logger
	now    func() time.Time
	name   string // the known_hosts name: HostKeyAlias, or host / [host]:port
	policy string // yes, no, accept-new, ask

	mu sync.Mutex
	db *knownHosts
	// cmdKey and cmdLines are what KnownHostsCommand printed for the
	// key last checked, so that a diagnosis (Trusted) does not run it
	// again.
	cmdKey   ssh.PublicKey
	cmdLines []*knownLine
	// commandTimeout shortens knownHostsCommandTimeout in tests.
	commandTimeout time.Duration
	// orderErr is KnownHostsCommand's failure when run for the order
	// of host key algorithms, before the handshake.
	orderErr error
}

// NewHostKeyChecker reads the target's known_hosts files: every
// UserKnownHostsFile, then every GlobalKnownHostsFile. Missing files and
// malformed lines are skipped with a warning.
func NewHostKeyChecker(t *sshcfg.Target, o HostKeyOptions) (*HostKeyChecker, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	files := slices.Concat(t.UserKnownHostsFiles, t.GlobalKnownHostsFiles)
	// OpenSSH's default files are often absent; only a file the
	// configuration names deserves a warning when it is missing.
	quiet := func(file string) bool {
		if slices.Contains(t.UserKnownHostsFiles, file) {
			return !t.Set("UserKnownHostsFile")
		}
		return !t.Set("GlobalKnownHostsFile")
	}
	return &HostKeyChecker{
		t:      t,
		log:    log,
		now:    now,
		name:   t.KnownHostsName(),
		policy: strictPolicy(t.StrictHostKeyChecking),
		db:     loadKnownHosts(files, quiet, log),

		commandTimeout: o.commandTimeout,
	}, nil
}

func trimPort22(name string) string {
	if h, p, err := net.SplitHostPort(name); err == nil && p == "22" {
		return h
	}
	return name
}

// strictPolicy normalises StrictHostKeyChecking; OpenSSH's default is ask.
func strictPolicy(v string) string {
	switch strings.ToLower(v) {
	case "yes", "true":
		return "yes"
	case "no", "off", "false":
		return "no"
	case "accept-new":
		return "accept-new"
	default:
		return "ask"
	}
}

// certHostname is the principal a host certificate must name.
func (c *HostKeyChecker) certHostname() string {
	if c.t.HostKeyAlias != "" {
		return c.t.HostKeyAlias
	}
	return strings.ToLower(c.t.HostName)
}

// Callback is the ssh.HostKeyCallback to put in ssh.ClientConfig. It
// ignores the hostname x/crypto passes and checks c's target; the address
// it was reached at counts only under CheckHostIP.
func (c *HostKeyChecker) Callback() ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		return c.check(key, c.hostIP(remote, key))
	}
}

// Check verifies key for the target, applying StrictHostKeyChecking.
func (c *HostKeyChecker) Check(key ssh.PublicKey) error { return c.check(key, "") }

// check is Check that, when ip is not "", also checks the key known for
// the server's address, as CheckHostIP does.
func (c *HostKeyChecker) check(key ssh.PublicKey, ip string) error {
	c.mu.Lock()
	orderErr := c.orderErr
	c.mu.Unlock()
	if orderErr != nil {
		return orderErr
	}
	extra, cerr := c.commandLines(key, c.name, "HOSTNAME")
	if cerr != nil {
		return cerr
	}
	var ipExtra []*knownLine
	if ip != "" {
		if ipExtra, cerr = c.commandLines(key, ip, "ADDRESS"); cerr != nil {
			return cerr
		}
	}
	c.mu.Lock()
	c.cmdKey, c.cmdLines = key, extra
	c.mu.Unlock()
	err := c.verify(key)
	ipKnown := c.addressCheck(key, ip, ipExtra)
	if err == nil {
		return c.hostKnown(key, ip, ipKnown)
	}
	switch err.Problem {
	case HostUnknown:
		// ssh checks the address after any policy let the new host in:
		// another key known for it refuses the connection unless
		// StrictHostKeyChecking is off.
		if ip != "" && ipKnown.status == ipChanged && c.policy != "no" {
			return c.addressChanged(key, ip, ipKnown)
		}
		switch c.policy {
		case "no":
			c.warnUnchecked(err)
			if ip != "" && ipKnown.status == ipChanged {
				c.log.Warn(c.addressChanged(key, ip, ipKnown).Error(), "host", c.name)
			}
			return nil
		case "accept-new":
			plain := key
			if cert, ok := key.(*ssh.Certificate); ok {
				plain = cert.Key
			}
			names := []string{c.name}
			if ip != "" && ipKnown.status == ipNew {
				names = append(names, ip) // ssh records "host,ip"
			}
			if werr := c.learn(plain, names...); werr != nil {
				c.log.Warn("could not record the new host key", "host", c.name, "err", werr)
			} else {
				c.log.Info("permanently added the host key to known_hosts",
					"host", strings.Join(names, ","), "type", plain.Type(), "fingerprint", ssh.FingerprintSHA256(plain), "file", c.userFile())
			}
			return nil
		}
	case HostKeyOtherType:
		// OpenSSH's accept-new would record this key; it is not a new
		// host though, so only "no" lets it through.
		if c.policy == "no" {
			c.warnUnchecked(err)
			return nil
		}
	case HostKeyChanged:
		if ip != "" && ipKnown.status != ipChanged {
			c.log.Warn("POSSIBLE DNS SPOOFING DETECTED: the host key changed, and the key for the address "+ip+" "+ipKnown.status.String(),
				"host", c.name)
		}
	}
	return err
}

func (c *HostKeyChecker) warnUnchecked(err *HostKeyError) {
	c.log.Warn("HOST KEY NOT VERIFIED (StrictHostKeyChecking no): anyone on the path could be impersonating this host",
		"host", c.name, "type", err.Type, "fingerprint", err.Fingerprint)
}

// verify looks key up; nil means trusted by known_hosts.
func (c *HostKeyChecker) verify(key ssh.PublicKey) *HostKeyError {
	lines, unread := c.knownLines(key)

	herr := &HostKeyError{
		Unread:         unread,
		Alias:          c.t.Alias,
		Name:           c.name,
		Type:           key.Type(),
		Fingerprint:    ssh.FingerprintSHA256(key),
		KnownHostsFile: c.userFile(),
	}
	if c.t.HostKeyAlias == "" {
		herr.ScanHost, herr.ScanPort = c.t.HostName, c.t.Port
	}

	plain := key
	cert, isCert := key.(*ssh.Certificate)
	if isCert {
		plain = cert.Key
		herr.Fingerprint = ssh.FingerprintSHA256(cert.Key)
	}
	// @revoked is honoured whatever its host pattern: a revoked key is
	// never acceptable.
	for _, l := range lines {
		if l.marker == markerRevoked && (keysEqual(l.key, plain) || isCert && keysEqual(l.key, cert.SignatureKey)) {
			herr.Problem = HostKeyRevoked
			herr.Known = []KnownKey{l.known()}
			return herr
		}
	}

	if isCert {
		var ca *knownLine
		for _, l := range lines {
			if l.marker == markerCA && keysEqual(l.key, cert.SignatureKey) && l.matches(c.name) {
				ca = l
				break
			}
		}
		if ca != nil {
			checker := &ssh.CertChecker{Clock: c.now}
			if cert.CertType != ssh.HostCert {
				herr.Problem = HostCertInvalid
				herr.Err = fmt.Errorf("certificate is not a host certificate")
				return herr
			}
			if err := checker.CheckCert(c.certHostname(), cert); err != nil {
				herr.Problem = HostCertInvalid
				herr.Err = err
				return herr
			}
			c.log.Debug("host certificate accepted", "host", c.name, "ca", ca.known().String())
			return nil
		}
		// No authority known for it: like OpenSSH, judge the plain key.
		c.log.Debug("no certificate authority for the host certificate; checking its plain key", "host", c.name)
		herr.Type = plain.Type()
	}

	var same, other []KnownKey
	for _, l := range lines {
		if l.marker != "" || !l.matches(c.name) {
			continue
		}
		if keysEqual(l.key, plain) {
			return nil
		}
		if l.key.Type() == plain.Type() {
			same = append(same, l.known())
		} else {
			other = append(other, l.known())
		}
	}
	switch {
	case len(same) > 0:
		herr.Problem, herr.Known = HostKeyChanged, same
	case len(other) > 0:
		herr.Problem, herr.Known = HostKeyOtherType, other
	default:
		herr.Problem = HostUnknown
	}
	return herr
}

// knownLines are the lines that speak for key: the files', then what
// KnownHostsCommand printed for it.
func (c *HostKeyChecker) knownLines(key ssh.PublicKey) ([]*knownLine, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := c.db.lines
	if len(c.cmdLines) > 0 && keysEqual(c.cmdKey, key) {
		lines = slices.Concat(lines, c.cmdLines)
	}
	return lines, c.db.unread
}

// userFile is where new keys go: the first UserKnownHostsFile.
func (c *HostKeyChecker) userFile() string {
	if len(c.t.UserKnownHostsFiles) > 0 {
		return c.t.UserKnownHostsFiles[0]
	}
	return "~/.ssh/known_hosts"
}

// Algorithms are the host key algorithms to offer, for
// ssh.ClientConfig.HostKeyAlgorithms: the list the configuration resolved
// to (sshcfg owns its syntax and defaults; the dialer narrows it to what
// x/crypto implements), ordered as ssh's order_hostkeyalgs orders it when
// HostKeyAlgorithms is unset or only adds or removes names. A server picks
// the first of ours it has, so it shows the key we know rather than one
// we would take for a changed key.
func (c *HostKeyChecker) Algorithms() []string {
	list := c.t.HostKeyAlgorithms
	if list == "" {
		list = sshcfg.DefaultAlgorithms("HostKeyAlgorithms")
	}
	base := strings.Split(list, ",")
	if !c.t.PreferKnownHostKeys() {
		return base
	}
	c.mu.Lock()
	lines := c.db.lines
	c.mu.Unlock()
	// ssh asks KnownHostsCommand too ("ORDER", no key yet); a failure
	// shows when the key is checked.
	// OpenSSH 9.2 names the host without its port here.
	orderName := c.t.HostKeyAlias
	if orderName == "" {
		orderName = strings.ToLower(c.t.HostName)
	}
	if extra, err := c.commandLines(nil, orderName, "ORDER"); err != nil {
		// ssh gives up here; Check reports it without running the
		// command again.
		c.mu.Lock()
		c.orderErr = err
		c.mu.Unlock()
	} else {
		lines = slices.Concat(lines, extra)
	}

	haveCA := false
	knownTypes := map[string]bool{}
	for _, l := range lines {
		if l.marker == markerRevoked || !l.matches(c.name) {
			continue
		}
		if l.marker == markerCA {
			haveCA = true
		} else {
			knownTypes[l.key.Type()] = true
		}
	}
	// A known key of the first algorithm's type (a certificate's plain
	// type included: a certificate without its CA is judged by its key)
	// keeps the list as it is.
	if typ, _ := algoKeyType(base[0]); knownTypes[typ] {
		return base
	}
	// Otherwise what known_hosts speaks for goes first, in the list's
	// order, and the rest after.
	var first, last []string
	for _, a := range base {
		typ, isCert := algoKeyType(a)
		if isCert && haveCA || knownTypes[typ] {
			first = append(first, a)
		} else {
			last = append(last, a)
		}
	}
	return slices.Concat(first, last)
}

// algoKeyType maps a host key algorithm to the key type it uses and
// whether it is a certificate algorithm.
func algoKeyType(algo string) (keyType string, cert bool) {
	if s, ok := strings.CutSuffix(algo, "-cert-v01@openssh.com"); ok {
		algo, cert = s, true
		// Security-key types keep their suffix when plain.
		if strings.HasPrefix(algo, "sk-") {
			algo += "@openssh.com"
		}
	}
	switch algo {
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		algo = ssh.KeyAlgoRSA
	}
	return algo, cert
}

// Trusted returns the known_hosts line that trusts key for the target (a
// plain key line, or the @cert-authority line for a host certificate),
// for diagnostics. ok is false when no line does.
func (c *HostKeyChecker) Trusted(key ssh.PublicKey) (k KnownKey, ok bool) {
	if c.verify(key) != nil {
		return KnownKey{}, false
	}
	lines, _ := c.knownLines(key)
	for _, l := range lines {
		if !l.matches(c.name) {
			continue
		}
		cert, isCert := key.(*ssh.Certificate)
		switch {
		case l.marker == markerCA && isCert && keysEqual(l.key, cert.SignatureKey):
			return l.known(), true
		case l.marker == "" && isCert && keysEqual(l.key, cert.Key):
			return l.known(), true
		case l.marker == "" && keysEqual(l.key, key):
			return l.known(), true
		}
	}
	return KnownKey{}, false
}
