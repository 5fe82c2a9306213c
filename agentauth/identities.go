package agentauth

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// IdentityOptions are the inputs to LoadIdentities besides the target.
type IdentityOptions struct {
	// Passphrase decrypts encrypted key files (--passphrase).
	Passphrase []byte
	// Getenv reads the environment (SSH_AUTH_SOCK, M2M_SSH_KEY, ...);
	// nil means os.Getenv.
	Getenv func(string) string
	Logger *slog.Logger
	// AllowNone has LoadIdentities return an empty set rather than a
	// NoIdentitiesError, so that the login reports it (as an AuthError
	// that offered nothing) after the name, the connect and the host key
	// have been checked: the order in which ssh reports.
	AllowNone bool

	// askpassTimeout shortens askpassTimeout in tests.
	askpassTimeout time.Duration
	// agentTimeout shortens agentListTimeout in tests.
	agentTimeout time.Duration
}

func (o IdentityOptions) getenv() func(string) string {
	if o.Getenv == nil {
		return os.Getenv
	}
	return o.Getenv
}

func (o IdentityOptions) passphraser() passphraser {
	return passphraser{given: o.Passphrase, getenv: o.getenv()}
}

// asker asks through SSH_ASKPASS with o's environment, logging to log.
func (o IdentityOptions) asker(log *slog.Logger) asker {
	return asker{getenv: o.getenv(), log: log, timeout: o.askpassTimeout}
}

// Identities are the keys m2m-ssh can offer to a server for one target.
type Identities struct {
	t       *sshcfg.Target
	ids     []identity
	skipped []error

	agentSock string
	conn      net.Conn
	agent     agent.ExtendedAgent

	// ask asks for passwords and keyboard-interactive answers.
	ask asker
}

// identity is one signer and where it came from.
type identity struct {
	signer ssh.Signer
	source string
}

func (id identity) offered() Offered {
	return Offered{
		Type:        id.signer.PublicKey().Type(),
		Fingerprint: ssh.FingerprintSHA256(id.signer.PublicKey()),
		Source:      id.source,
	}
}

// LoadIdentities gathers the signers for t: explicit identities first
// (M2M_SSH_KEY, configured IdentityFiles), then the agent's, then OpenSSH's
// default key files, certificates before their plain keys, duplicates
// removed, IdentitiesOnly honoured. A key that cannot be used is logged
// and skipped; it is an error only when nothing at all is left to offer
// (a *NoIdentitiesError).
func LoadIdentities(t *sshcfg.Target, o IdentityOptions) (*Identities, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	getenv := o.getenv()
	ids := &Identities{t: t}
	warn := func(err error) {
		ids.skipped = append(ids.skipped, err)
		log.Warn(err.Error())
	}

	// The agent first: a key it holds needs no passphrase.
	var agentSigners []ssh.Signer
	if sock, discovered := agentSocket(t, getenv); sock != "" {
		conn, err := dialAgent(sock)
		if err != nil {
			log.Warn(err.Error())
		} else {
			logAgent(log, sock, discovered)
			client := agent.NewClient(conn)
			agentSigners, err = listAgent(conn, client, o.agentTimeout)
			var silent errAgentSilent
			switch {
			case errors.As(err, &silent):
				// Its stream is at an unknown point: it is
				// neither used to sign nor forwarded.
				conn.Close()
				log.Warn("not using the ssh-agent at "+sock+"; only key files are offered", "err", err)
			default:
				ids.agentSock, ids.conn, ids.agent = sock, conn, client
				if err != nil {
					log.Warn("listing the keys of ssh-agent at "+sock, "err", err)
				}
			}
		}
	}
	inAgent := func(pub ssh.PublicKey) bool { return findSigner(agentSigners, pub) != nil }
	ids.ask = o.asker(log)
	pp := o.passphraser()
	pp.ask, pp.tries = ids.ask, numberOfPrompts(t)
	if t.BatchMode {
		// ssh tries the empty passphrase only and asks nobody
		// (load_identity_file quits at the first wrong one).
		pp.tries = 0
	}

	// Explicit and default key files, in the configured order.
	var explicit, defaults []*keyFile
	if text := getenv(secretenv.Key); text != "" {
		// CI secrets are sometimes stored with the newlines escaped.
		if !strings.Contains(text, "\n") && strings.Contains(text, `\n`) {
			text = strings.ReplaceAll(text, `\n`, "\n")
		}
		explicit = append(explicit, loadKeyText("M2M_SSH_KEY", []byte(text), pp, inAgent))
	}
	var certPaths []string
	for _, path := range t.IdentityFiles {
		isDefault := !t.Set("IdentityFile") && isDefaultIdentityName(path)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// Only the public half on disk: the agent may hold the
			// private one, as with OpenSSH.
			if pub, perr := readPublicKeyFile(path + ".pub"); perr == nil {
				kf := &keyFile{source: path, pub: pub, err: &KeyFileError{Path: path, Reason: "not found, and ssh-agent does not hold its key", Err: err,
					hint: "load the key into ssh-agent with 'ssh-add', or check IdentityFile for " + t.Alias}}
				if isDefault {
					defaults = append(defaults, kf)
				} else {
					explicit = append(explicit, kf)
				}
				certPaths = append(certPaths, path+"-cert.pub")
				continue
			}
			if isDefault {
				log.Debug("default key file not found", "file", path)
			} else {
				warn(&KeyFileError{Path: path, Reason: "not found", Err: err,
					hint: "check IdentityFile (or --client-key) for " + t.Alias + ": " + path + " does not exist"})
			}
			continue
		}
		kf := loadKeyFile(path, pp, inAgent)
		if isDefault {
			defaults = append(defaults, kf)
		} else {
			explicit = append(explicit, kf)
		}
		certPaths = append(certPaths, path+"-cert.pub")
	}
	var certs []*ssh.Certificate
	for _, path := range t.CertificateFiles {
		cert, err := readCertificate(path)
		if err != nil {
			warn(&KeyFileError{Path: path, Reason: "not a usable certificate", Err: err,
				hint: "check CertificateFile for " + t.Alias})
			continue
		}
		certs = append(certs, cert)
	}
	for _, path := range certPaths {
		if cert, err := readCertificate(path); err == nil {
			certs = append(certs, cert)
		} else if !errors.Is(err, os.ErrNotExist) {
			log.Warn("ignoring certificate", "file", path, "err", err)
		}
	}

	// The identities the configuration names: with IdentitiesOnly, the
	// agent may only sign for these.
	var configured []ssh.PublicKey
	for _, kf := range append(append([]*keyFile(nil), explicit...), defaults...) {
		if kf.pub != nil {
			configured = append(configured, kf.pub)
		}
	}
	for _, c := range certs {
		configured = append(configured, c.Key)
	}

	agentSource := "agent " + ids.agentSock
	addFile := func(kf *keyFile) {
		switch {
		case kf.signer != nil:
			ids.add(kf.signer, kf.source)
		case kf.pub != nil && inAgent(kf.pub):
			ids.add(findSigner(agentSigners, kf.pub), agentSource+" (for "+kf.source+")")
		case kf.err != nil:
			warn(kf.err)
		}
	}
	for _, kf := range explicit {
		addFile(kf)
	}
	for _, s := range agentSigners {
		pub := s.PublicKey()
		if c, ok := pub.(*ssh.Certificate); ok {
			pub = c.Key
		}
		if t.IdentitiesOnly && !containsKey(configured, pub) {
			log.Debug("IdentitiesOnly: not offering agent key", "fingerprint", ssh.FingerprintSHA256(pub))
			continue
		}
		ids.add(s, agentSource)
	}
	for _, kf := range defaults {
		addFile(kf)
	}
	ids.attachCertificates(certs, log)

	if len(ids.ids) == 0 && !ids.mayAsk() && !o.AllowNone {
		ids.Close()
		return nil, &NoIdentitiesError{Problems: ids.skipped, Config: configFile(t)}
	}
	for _, id := range ids.ids {
		o := id.offered()
		log.Debug("will offer", "type", o.Type, "fingerprint", o.Fingerprint, "source", o.Source)
	}
	return ids, nil
}

// mayAsk reports whether a login could go on without a key: with a
// password or keyboard-interactive answers from the askpass program.
func (ids *Identities) mayAsk() bool {
	t := ids.t
	enabled := configured(t, "PasswordAuthentication", t.PasswordAuthentication) ||
		configured(t, "KbdInteractiveAuthentication", t.KbdInteractiveAuthentication)
	return enabled && !t.BatchMode && ids.ask.available()
}

// add appends s unless the same public key is already there.
func (ids *Identities) add(s ssh.Signer, source string) {
	for _, id := range ids.ids {
		if keysEqual(id.signer.PublicKey(), s.PublicKey()) {
			return
		}
	}
	ids.ids = append(ids.ids, identity{signer: s, source: source})
}

// attachCertificates puts a certificate signer before each plain signer
// whose key a certificate certifies, as OpenSSH offers KEY-cert.pub
// before KEY.
func (ids *Identities) attachCertificates(certs []*ssh.Certificate, log *slog.Logger) {
	if len(certs) == 0 {
		return
	}
	var out []identity
	seen := func(pub ssh.PublicKey) bool {
		for _, id := range out {
			if keysEqual(id.signer.PublicKey(), pub) {
				return true
			}
		}
		for _, id := range ids.ids {
			if keysEqual(id.signer.PublicKey(), pub) {
				return true
			}
		}
		return false
	}
	for _, id := range ids.ids {
		if _, isCert := id.signer.PublicKey().(*ssh.Certificate); !isCert {
			for _, c := range certs {
				if !keysEqual(c.Key, id.signer.PublicKey()) || seen(c) {
					continue
				}
				cs, err := ssh.NewCertSigner(c, id.signer)
				if err != nil {
					log.Warn("cannot use certificate", "key", ssh.FingerprintSHA256(c.Key), "err", err)
					continue
				}
				out = append(out, identity{signer: cs, source: id.source + " + certificate"})
			}
		}
		out = append(out, id)
	}
	ids.ids = out
}

func findSigner(signers []ssh.Signer, pub ssh.PublicKey) ssh.Signer {
	for _, s := range signers {
		if keysEqual(s.PublicKey(), pub) {
			return s
		}
	}
	return nil
}

func containsKey(keys []ssh.PublicKey, k ssh.PublicKey) bool {
	for _, x := range keys {
		if keysEqual(x, k) {
			return true
		}
	}
	return false
}

// Signers are the signers in the order they are offered.
func (ids *Identities) Signers() []ssh.Signer {
	s := make([]ssh.Signer, len(ids.ids))
	for i, id := range ids.ids {
		s[i] = id.signer
	}
	return s
}

// Offered describes the identities in the order they are offered.
func (ids *Identities) Offered() []Offered {
	o := make([]Offered, len(ids.ids))
	for i, id := range ids.ids {
		o[i] = id.offered()
	}
	return o
}

// AuthMethod offers every identity in one public-key method, so that a
// server's MaxAuthTries counts each key once.
func (ids *Identities) AuthMethod() ssh.AuthMethod {
	signers := ids.Signers()
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return signers, nil })
}

// AgentSocket is the path of the agent's socket, "" when none is used.
func (ids *Identities) AgentSocket() string { return ids.agentSock }

// None is the NoIdentitiesError of an empty set (IdentityOptions.AllowNone),
// or nil when there is something to offer: a key, or the askpass
// program's answers.
func (ids *Identities) None() error {
	if len(ids.ids) > 0 || ids.mayAsk() {
		return nil
	}
	return &NoIdentitiesError{Problems: ids.skipped, Config: configFile(ids.t)}
}

// AuthError explains a failed authentication: which identities were offered
// and that the server refused them. Other errors are returned unchanged.
func (ids *Identities) AuthError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// sshd ends the connection itself once MaxAuthTries keys failed.
	tooMany := strings.Contains(msg, "Too many authentication failures")
	if !tooMany && !strings.Contains(msg, "ssh: unable to authenticate") {
		return err
	}
	host := ids.t.Alias
	if host == "" {
		host = ids.t.HostName
	}
	return &AuthError{User: ids.t.User, Host: host, Offered: ids.Offered(), Skipped: ids.skipped,
		TooManyTries: tooMany, IdentitiesOnly: ids.t.IdentitiesOnly, Config: configFile(ids.t), Err: err}
}

// Close releases the agent connection.
func (ids *Identities) Close() error {
	if ids.conn == nil {
		return nil
	}
	err := ids.conn.Close()
	ids.conn = nil
	return err
}
