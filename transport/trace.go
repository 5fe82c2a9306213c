package transport

import (
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// Trace is a set of hooks a Dialer calls as it reaches its target, in the
// manner of net/http/httptrace's ClientTrace: hop by hop (each jump host
// in turn, then the target), step by step. m2m-ssh doctor builds its report
// from them, so what doctor checks is what the bridge does. Any hook may be
// nil; hooks run on the dialing goroutine and must not block.
type Trace struct {
	// Resolved reports the lookup of a hop's host name for a direct TCP
	// connection; addrs is empty when the name is an address already.
	Resolved func(h Hop, addrs []string, err error, took time.Duration)
	// Connected reports the byte stream to a hop: a TCP connection, a
	// ProxyCommand, or a channel through the jump host before it.
	Connected func(h Hop, remote string, err error, took time.Duration)
	// Handshake reports the SSH handshake up to the host key's verdict.
	Handshake func(h Hop, hs Handshake, err error)
	// Authenticated reports the login: the identity the server accepted,
	// or the error.
	Authenticated func(h Hop, accepted agentauth.Offered, err error, took time.Duration)
	// Master reports the master at the target's ControlPath, when one
	// is configured and ControlMaster lets it be ridden: err is why it
	// cannot be (mux.ErrNoMaster when nobody listens).
	Master func(m Master, err error)
}

// Hop is one machine on the way to a target, as a Trace sees it.
type Hop struct {
	// Target is the hop as resolved: a jump host under its own name.
	Target *sshcfg.Target
	// JumpFor is the alias of the host this hop is a jump host for; empty
	// for the target.
	JumpFor string
	// Via is how the stream to it runs: the alias of the jump host before
	// it, "ProxyCommand", or empty for a direct TCP connection.
	Via string
}

// Handshake is what the SSH handshake showed of a server.
type Handshake struct {
	// ServerVersion is the server's version line, or the first line of
	// whatever a server that is not SSH said.
	ServerVersion string
	// HostKey is the key the server presented; nil when the handshake
	// ended before it did.
	HostKey ssh.PublicKey
	// Known is the known_hosts line that vouched for HostKey; nil when the
	// key was accepted without one (StrictHostKeyChecking no or
	// accept-new) or refused.
	Known *agentauth.KnownKey
}

func (tr *Trace) resolved(h Hop, addrs []string, err error, took time.Duration) {
	if tr != nil && tr.Resolved != nil {
		tr.Resolved(h, addrs, err, took)
	}
}

func (tr *Trace) connected(h Hop, remote string, err error, took time.Duration) {
	if tr != nil && tr.Connected != nil {
		tr.Connected(h, remote, err, took)
	}
}

func (tr *Trace) handshake(h Hop, hs Handshake, err error) {
	if tr != nil && tr.Handshake != nil {
		tr.Handshake(h, hs, err)
	}
}

func (tr *Trace) authenticated(h Hop, accepted agentauth.Offered, err error, took time.Duration) {
	if tr != nil && tr.Authenticated != nil {
		tr.Authenticated(h, accepted, err, took)
	}
}

// traceHandshake watches one hop's handshake for a Trace: the server's
// first bytes, the host key and its verdict, and which identity signed.
type traceHandshake struct {
	conn *versionConn
	key  ssh.PublicKey
	// keyErr is the host key check's verdict.
	keyErr error
	// signed is the index of the last identity the server let sign: x/crypto
	// asks whether the server would accept a key before signing with it,
	// so the last one used is the one that logged in.
	signed int
}

// maxVersionBytes is how much of the server's first output a trace keeps:
// its version line is at most 255 bytes (RFC 4253 4.2), and a server that
// is not SSH is named by its first line.
const maxVersionBytes = 512

// versionConn keeps the first bytes the server sends.
type versionConn struct {
	net.Conn
	mu    sync.Mutex
	first []byte
}

func (c *versionConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if room := maxVersionBytes - len(c.first); room > 0 {
		c.first = append(c.first, p[:min(n, room)]...)
	}
	c.mu.Unlock()
	return n, err
}

// serverLine is the server's version line, or its first line when it
// sent none.
func (c *versionConn) serverLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := strings.Split(string(c.first), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "SSH-") {
			return strings.TrimRight(l, "\r")
		}
	}
	return strings.TrimSpace(lines[0])
}

// hostKeyCallback records the key and the verdict of check.
func (th *traceHandshake) hostKeyCallback(check ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		th.key = key
		th.keyErr = check(host, remote, key)
		return th.keyErr
	}
}

// authMethod offers signers as Identities.AuthMethod does, noting which
// one signs.
func (th *traceHandshake) authMethod(signers []ssh.Signer) ssh.AuthMethod {
	th.signed = -1
	wrapped := make([]ssh.Signer, len(signers))
	for i, s := range signers {
		wrapped[i] = th.wrap(i, s)
	}
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return wrapped, nil })
}

// wrap keeps the algorithm interfaces of s, which x/crypto uses to pick
// rsa-sha2 signatures.
func (th *traceHandshake) wrap(i int, s ssh.Signer) ssh.Signer {
	note := func() { th.signed = i }
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return &recordSigner{Signer: s, note: note}
	}
	a := &recordAlgoSigner{AlgorithmSigner: as, note: note}
	if ms, ok := s.(ssh.MultiAlgorithmSigner); ok {
		return &recordMultiSigner{recordAlgoSigner: a, algos: ms.Algorithms()}
	}
	return a
}

type recordSigner struct {
	ssh.Signer
	note func()
}

func (s *recordSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.note()
	return s.Signer.Sign(rand, data)
}

type recordAlgoSigner struct {
	ssh.AlgorithmSigner
	note func()
}

func (s *recordAlgoSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s.note()
	return s.AlgorithmSigner.Sign(rand, data)
}

func (s *recordAlgoSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s.note()
	return s.AlgorithmSigner.SignWithAlgorithm(rand, data, algorithm)
}

type recordMultiSigner struct {
	*recordAlgoSigner
	algos []string
}

func (s *recordMultiSigner) Algorithms() []string { return s.algos }
