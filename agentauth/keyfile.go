package agentauth

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
	"golang.org/x/crypto/ssh"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
)

// keyFile is a key read from a file or from M2M_SSH_KEY.
type keyFile struct {
	source string
	signer ssh.Signer    // nil when the private key could not be used
	pub    ssh.PublicKey // known even without the private key when possible
	err    error         // why signer is nil
}

// passphraser supplies passphrases in order: --passphrase,
// M2M_SSH_PASSPHRASE, then the askpass program, asked up to tries times
// as ssh asks NumberOfPasswordPrompts times (never in BatchMode, where ssh
// gives up at the first wrong one: the empty passphrase).
type passphraser struct {
	given  []byte
	getenv func(string) string
	ask    asker
	tries  int
}

// forNewKey is the passphrase a key m2m-ssh generates is encrypted with:
// --passphrase, else M2M_SSH_PASSPHRASE; nobody is asked for one.
func (p passphraser) forNewKey() []byte {
	if len(p.given) > 0 {
		return p.given
	}
	return []byte(p.getenv(secretenv.Passphrase))
}

// each calls try with each available passphrase until it returns true.
// It reports whether any source was available.
func (p passphraser) each(prompt string, try func([]byte) bool) (available bool, err error) {
	if len(p.given) > 0 {
		available = true
		if try(p.given) {
			return true, nil
		}
	}
	if env := p.getenv(secretenv.Passphrase); env != "" {
		available = true
		if try([]byte(env)) {
			return true, nil
		}
	}
	if p.tries <= 0 || p.ask.getenv == nil || !p.ask.available() {
		return available, nil
	}
	for i := 0; i < p.tries; i++ {
		pass, err := p.ask.ask(context.Background(), prompt)
		if err != nil {
			return true, err
		}
		if len(pass) == 0 {
			// ssh: "no passphrase given, try next key".
			return true, nil
		}
		ok := try(pass)
		clear(pass)
		if ok {
			return true, nil
		}
	}
	return true, nil
}

// maxKeyFileSize bounds a private key, public key or certificate file:
// the largest real ones (an RSA 16384 private key, a certificate naming
// thousands of principals) are well under 100 KiB.
const maxKeyFileSize = 1 << 20

// loadKeyFile reads a private key file, refusing it when others may read
// it, as OpenSSH does.
// inAgent, when it reports that the agent holds the key, spares a
// passphrase prompt: the agent's copy will sign.
func loadKeyFile(path string, pp passphraser, inAgent func(ssh.PublicKey) bool) *keyFile {
	kf := &keyFile{source: path}
	if pub, err := readPublicKeyFile(path + ".pub"); err == nil {
		kf.pub = pub
	}
	data, err := readPrivateKeyFile(path, true)
	if err != nil {
		kf.err = err
		return kf
	}
	defer clear(data)
	parseKey(kf, data, "Enter passphrase for key '"+path+"': ", pp, inAgent)
	return kf
}

// readPrivateKeyFile reads a private key file that must be a regular
// file; checkPerm checks its permissions on the open descriptor, as
// OpenSSH does before it uses a key to sign.
func readPrivateKeyFile(path string, checkPerm bool) ([]byte, error) {
	f, fi, err := regularfile.Open(path)
	if err != nil {
		return nil, keyFileReadError(path, err)
	}
	defer f.Close()
	if checkPerm {
		if err := checkKeyPermissions(path, fi); err != nil {
			return nil, err
		}
	}
	data, err := regularfile.ReadOpen(f, fi, path, maxKeyFileSize)
	if err != nil {
		return nil, keyFileReadError(path, err)
	}
	return data, nil
}

// keyFileReadError explains why a key file could not be read. Only a
// file that can be read at all gets a hint about its permissions.
func keyFileReadError(path string, err error) *KeyFileError {
	var notRegular *regularfile.NotRegularError
	var tooLarge *regularfile.TooLargeError
	switch {
	case errors.As(err, &notRegular):
		kind := regularfile.Kind(notRegular.Mode)
		return &KeyFileError{Path: path, Reason: "not a regular file", Err: fmt.Errorf("it is %s", kind),
			hint: "point IdentityFile (or -i) at a private key file: " + path + " is " + kind}
	case errors.As(err, &tooLarge):
		return &KeyFileError{Path: path, Reason: "too large to be a key", Err: fmt.Errorf("larger than %d bytes", tooLarge.Limit),
			hint: "point IdentityFile (or -i) at a private key file"}
	}
	return &KeyFileError{Path: path, Reason: "cannot read it", Err: err,
		hint: "check that " + path + " exists and is readable by you"}
}

// loadKeyText reads a private key given as text (M2M_SSH_KEY).
func loadKeyText(source string, text []byte, pp passphraser, inAgent func(ssh.PublicKey) bool) *keyFile {
	kf := &keyFile{source: source}
	parseKey(kf, text, "Enter passphrase for the key in "+source+": ", pp, inAgent)
	return kf
}

func parseKey(kf *keyFile, data []byte, prompt string, pp passphraser, inAgent func(ssh.PublicKey) bool) {
	signer, err := ssh.ParsePrivateKey(data)
	if err == nil {
		kf.signer, kf.pub = signer, signer.PublicKey()
		return
	}
	if pub := embeddedPublicKey(data); pub != nil && isSecurityKey(pub) {
		// Its private half is on the authenticator: only the agent
		// (through its middleware) can sign with it. Nobody is
		// asked for a passphrase that could not help.
		if kf.pub == nil {
			kf.pub = pub
		}
		kf.err = &KeyFileError{Path: kf.source, Reason: "a " + pub.Type() + " security-key file, which only ssh-agent can use",
			hint: "security-key files are used through the agent: ssh-add " + kf.source}
		return
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		kf.err = &KeyFileError{Path: kf.source, Reason: "not a private key this program can use", Err: err,
			hint: "give an OpenSSH or PEM private key (ed25519, ecdsa or rsa); convert others with 'ssh-keygen -p -f FILE'"}
		return
	}
	if missing.PublicKey != nil && kf.pub == nil {
		kf.pub = missing.PublicKey
	}
	if kf.pub != nil && inAgent(kf.pub) {
		return
	}
	kf.err = &KeyFileError{Path: kf.source, Reason: "passphrase protected, and no passphrase given",
		hint: "give the passphrase with --passphrase or M2M_SSH_PASSPHRASE, set SSH_ASKPASS (with SSH_ASKPASS_REQUIRE=force when there is no DISPLAY), or load the key into ssh-agent with ssh-add"}
	kf.decrypt(data, prompt, pp)
}

// decrypt tries the passphrase sources on an encrypted key.
func (kf *keyFile) decrypt(data []byte, prompt string, pp passphraser) {
	var lastErr error
	available, err := pp.each(prompt, func(pass []byte) bool {
		s, err := ssh.ParsePrivateKeyWithPassphrase(data, pass)
		if err != nil {
			lastErr = err
			return false
		}
		kf.signer, kf.pub, kf.err = s, s.PublicKey(), nil
		return true
	})
	if kf.signer != nil || !available {
		return
	}
	if err == nil {
		err = lastErr
	}
	kf.err = &KeyFileError{Path: kf.source, Reason: "cannot decrypt it", Err: err,
		hint: "check the passphrase given with --passphrase, M2M_SSH_PASSPHRASE or SSH_ASKPASS"}
}

// embeddedPublicKey is the public key an OpenSSH private key file
// ("openssh-key-v1") carries in the clear, encrypted or not; nil for any
// other file.
func embeddedPublicKey(data []byte) ssh.PublicKey {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "OPENSSH PRIVATE KEY" {
		return nil
	}
	rest, ok := bytes.CutPrefix(block.Bytes, []byte("openssh-key-v1\x00"))
	if !ok {
		return nil
	}
	var w struct {
		CipherName, KdfName, KdfOpts string
		NumKeys                      uint32
		PubKey                       []byte
		Rest                         []byte `ssh:"rest"`
	}
	if err := ssh.Unmarshal(rest, &w); err != nil || w.NumKeys != 1 {
		return nil
	}
	pub, err := ssh.ParsePublicKey(w.PubKey)
	if err != nil {
		return nil
	}
	return pub
}

// isSecurityKey reports whether pub is a FIDO key (sk-ssh-ed25519@openssh.com,
// sk-ecdsa-sha2-nistp256@openssh.com) or a certificate of one.
func isSecurityKey(pub ssh.PublicKey) bool {
	if c, ok := pub.(*ssh.Certificate); ok {
		pub = c.Key
	}
	return strings.HasPrefix(pub.Type(), "sk-")
}

// readPublicKeyFile reads a .pub or certificate file, refusing anything
// but a regular file.
func readPublicKeyFile(path string) (ssh.PublicKey, error) {
	data, err := regularfile.Read(path, maxKeyFileSize)
	if err != nil {
		return nil, err
	}
	return parsePublicKey(data)
}

// parsePublicKey parses the first key of a .pub or certificate file.
func parsePublicKey(data []byte) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	return pub, err
}

// readCertificate reads a KEY-cert.pub or CertificateFile.
func readCertificate(path string) (*ssh.Certificate, error) {
	pub, err := readPublicKeyFile(path)
	if err != nil {
		return nil, err
	}
	return asCertificate(pub, path)
}

func asCertificate(pub ssh.PublicKey, path string) (*ssh.Certificate, error) {
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("%s holds a %s key, not a certificate", path, pub.Type())
	}
	return cert, nil
}

// defaultIdentityNames are the files OpenSSH tries when no IdentityFile
// is configured.
var defaultIdentityNames = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}

func isDefaultIdentityName(path string) bool {
	for _, n := range defaultIdentityNames {
		if strings.HasSuffix(path, "/.ssh/"+n) {
			return true
		}
	}
	return false
}
