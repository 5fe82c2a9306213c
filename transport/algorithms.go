package transport

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// algorithms are what one hop proposes: the lists the configuration
// resolved to (OpenSSH's, which leave out what OpenSSH disables by
// default), narrowed to what x/crypto implements. x/crypto's own
// defaults are never used: they take SHA-1 key exchanges and ssh-rsa
// host keys that OpenSSH refuses unless asked.
type algorithms struct {
	kex, ciphers, macs, hostKeys []string
	pubkey, caSigs               []string
}

// implemented are the names x/crypto can negotiate, insecure ones
// included: the configuration decides whether they are proposed.
func implemented(keyword string) []string {
	sup, ins := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	switch keyword {
	case "KexAlgorithms":
		// x/crypto adds the @libssh.org name itself when it proposes
		// curve25519-sha256, and accepts it named.
		return slices.Concat(sup.KeyExchanges, ins.KeyExchanges, []string{"curve25519-sha256@libssh.org"})
	case "Ciphers":
		return slices.Concat(sup.Ciphers, ins.Ciphers)
	case "MACs":
		return slices.Concat(sup.MACs, ins.MACs)
	case "HostKeyAlgorithms":
		return slices.Concat(sup.HostKeys, ins.HostKeys)
	}
	return nil
}

// newAlgorithms narrows t's lists to x/crypto's. A name the configuration
// asked for that x/crypto lacks is logged and left out; a list left empty
// is an error naming its keyword.
func newAlgorithms(t *sshcfg.Target, log *slog.Logger) (*algorithms, error) {
	orDefault := func(keyword, list string) string {
		if list == "" {
			return sshcfg.DefaultAlgorithms(keyword)
		}
		return list
	}
	a := &algorithms{
		pubkey: split(orDefault("PubkeyAcceptedAlgorithms", t.PubkeyAcceptedAlgorithms)),
		caSigs: split(orDefault("CASignatureAlgorithms", t.CASignatureAlgorithms)),
	}
	for _, l := range []struct {
		keyword string
		list    string
		dst     *[]string
	}{
		{"KexAlgorithms", t.KexAlgorithms, &a.kex},
		{"Ciphers", t.Ciphers, &a.ciphers},
		{"MACs", t.MACs, &a.macs},
		{"HostKeyAlgorithms", t.HostKeyAlgorithms, &a.hostKeys},
	} {
		l.list = orDefault(l.keyword, l.list)
		impl := implemented(l.keyword)
		var lacking []string
		for _, n := range split(l.list) {
			if slices.Contains(impl, n) {
				*l.dst = append(*l.dst, n)
			} else {
				lacking = append(lacking, n)
			}
		}
		// Only names the configuration wrote are worth a word: OpenSSH's
		// defaults hold some (umac, sntrup761) that no x/crypto has.
		var asked []string
		for _, n := range t.Written(l.keyword) {
			if slices.Contains(lacking, n) {
				asked = append(asked, n)
			}
		}
		if len(asked) > 0 && len(*l.dst) > 0 {
			log.Warn(fmt.Sprintf("%s: m2m-ssh does not implement %s; proposing the rest", l.keyword, strings.Join(asked, ",")),
				"host", t.Alias)
		}
		if len(*l.dst) == 0 {
			return nil, &AlgorithmError{Keyword: l.keyword, Configured: split(l.list), Implemented: impl}
		}
	}
	if !t.OrderChosen("Ciphers") {
		a.ciphers = fastestFirst(a.ciphers)
	}
	return a, nil
}

// fastestFirst orders the ciphers OpenSSH's defaults allow by what is
// fastest here, as crypto/tls orders its suites: AES-GCM first where the
// CPU has AES and carry-less multiply instructions, else
// ChaCha20-Poly1305 (OpenSSH's own first choice, which is OpenSSL's
// assembly there but Go's portable code here: AES-GCM is twice as fast on
// such CPUs). Only the order changes, never the set; a user who chose the
// order keeps it.
func fastestFirst(ciphers []string) []string {
	if !aesGCMHardware() {
		return ciphers
	}
	var first []string
	for _, c := range []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM} {
		if slices.Contains(ciphers, c) {
			first = append(first, c)
		}
	}
	rest := slices.DeleteFunc(slices.Clone(ciphers), func(c string) bool { return slices.Contains(first, c) })
	return append(first, rest...)
}

// aesGCMHardware is crypto/tls's test for Go's assembly AES-GCM.
func aesGCMHardware() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES && cpu.S390X.HasAESCTR && (cpu.S390X.HasGHASH || cpu.S390X.HasAESGCM)
	}
	return false
}

// apply sets cfg's lists. Host key algorithms keep the order known_hosts
// gave them (known key types first) but only those the configuration
// allows.
func (a *algorithms) apply(cfg *ssh.ClientConfig, known []string) {
	cfg.KeyExchanges = a.kex
	cfg.Ciphers = a.ciphers
	cfg.MACs = a.macs
	var hk []string
	for _, k := range known {
		if slices.Contains(a.hostKeys, k) {
			hk = append(hk, k)
		}
	}
	for _, k := range a.hostKeys {
		if !slices.Contains(hk, k) {
			hk = append(hk, k)
		}
	}
	cfg.HostKeyAlgorithms = hk
	if len(a.caSigs) > 0 {
		cfg.HostKeyCallback = a.checkCASignature(cfg.HostKeyCallback)
	}
}

// checkCASignature refuses a host certificate whose CA signed it with an
// algorithm CASignatureAlgorithms leaves out, before the known hosts are
// consulted, as OpenSSH does.
func (a *algorithms) checkCASignature(next ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		if c, ok := key.(*ssh.Certificate); ok && c.Signature != nil && !slices.Contains(a.caSigs, c.Signature.Format) {
			return &CASignatureError{Algorithm: c.Signature.Format, Accepted: a.caSigs}
		}
		return next(host, remote, key)
	}
}

// signers restricts each signer to the signature algorithms
// PubkeyAcceptedAlgorithms allows for its key, in that list's order. A
// signer left with none stays in place (so indexes into the identities
// still hold) but x/crypto skips it: OpenSSH skips such a key too.
func (a *algorithms) signers(in []ssh.Signer) []ssh.Signer {
	out := make([]ssh.Signer, len(in))
	for i, s := range in {
		out[i] = &acceptedSigner{signer: s, algos: acceptedFor(s.PublicKey().Type(), a.pubkey)}
	}
	return out
}

// rsaSHA1Left reports whether an RSA key was offered without ssh-rsa
// (SHA-1) signatures coming first: a server that lists rsa-sha2 in
// server-sig-algs but takes only ssh-rsa refuses it, as it refuses
// OpenSSH's ssh, and the fix is PubkeyAcceptedAlgorithms.
func (a *algorithms) rsaSHA1Left(in []ssh.Signer) bool {
	for _, s := range in {
		if typ := s.PublicKey().Type(); typ == ssh.KeyAlgoRSA || typ == ssh.CertAlgoRSAv01 {
			if algos := acceptedFor(typ, a.pubkey); len(algos) == 0 || algos[0] != ssh.KeyAlgoRSA {
				return true
			}
		}
	}
	return false
}

const certSuffix = "-cert-v01@openssh.com"

// acceptedFor are the signature algorithms (as x/crypto names them for a
// signer: without the certificate suffix) that accepted allows for a key
// of type keyType.
func acceptedFor(keyType string, accepted []string) []string {
	base, isCert := strings.CutSuffix(keyType, certSuffix)
	var out []string
	for _, a := range accepted {
		alg, aCert := strings.CutSuffix(a, certSuffix)
		if aCert != isCert || keyFormat(alg) != base || slices.Contains(out, alg) {
			continue
		}
		out = append(out, alg)
	}
	return out
}

// keyFormat is the key type a signature algorithm signs with.
func keyFormat(alg string) string {
	switch alg {
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		return ssh.KeyAlgoRSA
	}
	return alg
}

// acceptedSigner is a signer limited to some signature algorithms, which
// may be none.
type acceptedSigner struct {
	signer ssh.Signer
	algos  []string
}

func (s *acceptedSigner) PublicKey() ssh.PublicKey { return s.signer.PublicKey() }

func (s *acceptedSigner) Algorithms() []string { return s.algos }

func (s *acceptedSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

func (s *acceptedSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if algorithm == "" && len(s.algos) > 0 {
		algorithm = s.algos[0]
	}
	if !slices.Contains(s.algos, algorithm) {
		return nil, fmt.Errorf("signature algorithm %s is not in PubkeyAcceptedAlgorithms", algorithm)
	}
	if as, ok := s.signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	if algorithm != strings.TrimSuffix(s.signer.PublicKey().Type(), certSuffix) {
		return nil, fmt.Errorf("this key signs only with %s", s.signer.PublicKey().Type())
	}
	return s.signer.Sign(rand, data)
}

// explain turns a failed handshake into an error that names the keyword
// to change: x/crypto's failure to agree on an algorithm, or a refused
// login where PubkeyAcceptedAlgorithms kept an RSA key from ssh-rsa
// signatures. Otherwise it returns authErr, what the identities made of
// err.
func (a *algorithms) explain(err, authErr error, signers []ssh.Signer) error {
	var ne *ssh.AlgorithmNegotiationError
	if !errors.As(err, &ne) {
		var ae *agentauth.AuthError
		if errors.As(authErr, &ae) && a.rsaSHA1Left(signers) {
			return &SignatureAlgorithmError{Err: authErr}
		}
		return authErr
	}
	// Both sides add markers (ext-info-c, kex-strict-...) to their key
	// exchanges; they are not algorithms anyone can choose.
	marker := func(k string) bool {
		return strings.HasPrefix(k, "ext-info-") || strings.HasPrefix(k, "kex-strict-")
	}
	e := &NegotiationError{What: ne.What,
		Ours:   slices.DeleteFunc(slices.Clone(ne.SupportedAlgorithms), marker),
		Theirs: slices.DeleteFunc(slices.Clone(ne.RequestedAlgorithms), marker)}
	switch {
	case ne.What == "key exchange":
		e.Keyword = "KexAlgorithms"
	case ne.What == "host key":
		e.Keyword = "HostKeyAlgorithms"
	case strings.HasSuffix(ne.What, "cipher"):
		e.Keyword = "Ciphers"
	case strings.HasSuffix(ne.What, "MAC"):
		e.Keyword = "MACs"
	default:
		return authErr
	}
	return e
}

// NegotiationError is a server with no algorithm in common with what the
// configuration allows.
type NegotiationError struct {
	What    string // as x/crypto says it: "key exchange", "host key", "client to server cipher", ...
	Keyword string // the ssh_config keyword that sets our side
	Ours    []string
	Theirs  []string
}

func (e *NegotiationError) Error() string {
	return fmt.Sprintf("no %s algorithm in common: %s allows %s; the server offers %s",
		e.What, e.Keyword, strings.Join(e.Ours, ","), strings.Join(e.Theirs, ","))
}

// Permanent: the server's list or the configuration must change.
func (e *NegotiationError) Permanent() bool { return true }

func (e *NegotiationError) Hint() string {
	impl := implemented(e.Keyword)
	for _, a := range e.Theirs {
		if !slices.Contains(impl, a) {
			continue
		}
		why := "OpenSSH's defaults leave it out too"
		if slices.Contains(split(sshcfg.DefaultAlgorithms(e.Keyword)), a) {
			why = "the configuration's " + e.Keyword + " line leaves it out"
		}
		return fmt.Sprintf("if you accept the server's %s, add '%s +%s' to its Host block, above any other %s line: the first one wins (%s)",
			a, e.Keyword, a, e.Keyword, why)
	}
	return fmt.Sprintf("m2m-ssh implements none of the server's %s algorithms (%s); the server's configuration must offer one of %s",
		e.What, strings.Join(e.Theirs, ","), strings.Join(impl, ","))
}

// AlgorithmError is an algorithm list the configuration left with nothing
// m2m-ssh implements.
type AlgorithmError struct {
	Keyword     string
	Configured  []string
	Implemented []string
}

func (e *AlgorithmError) Error() string {
	return fmt.Sprintf("%s allows only %s, none of which m2m-ssh implements",
		e.Keyword, strings.Join(e.Configured, ","))
}

func (e *AlgorithmError) Permanent() bool { return true }

func (e *AlgorithmError) Hint() string {
	return fmt.Sprintf("add one of %s to %s for this host", strings.Join(e.Implemented, ","), e.Keyword)
}

// CASignatureError is a host certificate signed with an algorithm
// CASignatureAlgorithms does not accept.
type CASignatureError struct {
	Algorithm string
	Accepted  []string
}

func (e *CASignatureError) Error() string {
	return fmt.Sprintf("the host certificate is signed with %s, which CASignatureAlgorithms (%s) does not accept",
		e.Algorithm, strings.Join(e.Accepted, ","))
}

func (e *CASignatureError) Permanent() bool { return true }

func (e *CASignatureError) Hint() string {
	return fmt.Sprintf("if you accept %s signatures from the CA, add 'CASignatureAlgorithms +%s' to this host's block", e.Algorithm, e.Algorithm)
}

// SignatureAlgorithmError is a refused login where an RSA key was not
// offered with ssh-rsa (SHA-1) signatures first: OpenSSH's default leaves
// them out, and a server that takes only those refuses the key.
type SignatureAlgorithmError struct {
	Err error
}

func (e *SignatureAlgorithmError) Error() string {
	return e.Err.Error() + " (RSA keys were offered with SHA-2 signatures, not ssh-rsa: PubkeyAcceptedAlgorithms decides)"
}

func (e *SignatureAlgorithmError) Unwrap() error { return e.Err }

func (e *SignatureAlgorithmError) Permanent() bool { return true }

func (e *SignatureAlgorithmError) Hint() string {
	h := "if the server accepts only ssh-rsa (SHA-1) signatures, add 'PubkeyAcceptedAlgorithms ^ssh-rsa' to its Host block (a server that lists rsa-sha2 but refuses it needs ssh-rsa first, with OpenSSH too)"
	if inner := verdict.Hint(e.Err); inner != "" {
		return inner + "; " + h
	}
	return h
}

func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}
