package agentauth

import (
	"log/slog"

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
}

// Identities are the keys m2m-ssh can offer to a server for one target.
type Identities struct {
	// TODO(phase 1): agent connection, signers with their sources.
}

// LoadIdentities gathers the signers for t: explicit identities first,
// then the agent's, duplicates removed, IdentitiesOnly honoured.
func LoadIdentities(t *sshcfg.Target, o IdentityOptions) (*Identities, error) {
	panic("not implemented")
}

// AuthMethod offers every identity in one public-key method.
func (ids *Identities) AuthMethod() ssh.AuthMethod { panic("not implemented") }

// Agent is the agent the identities came from, for agent forwarding; nil
// when no agent is in use.
func (ids *Identities) Agent() agent.ExtendedAgent { panic("not implemented") }

// AuthError explains a failed authentication: which identities were offered
// and that the server refused them. Other errors are returned unchanged.
func (ids *Identities) AuthError(err error) error { panic("not implemented") }

// Close releases the agent connection.
func (ids *Identities) Close() error { panic("not implemented") }

// HostKeyOptions are the inputs to NewHostKeyChecker besides the target.
type HostKeyOptions struct {
	Logger *slog.Logger
}

// HostKeyChecker verifies a server's host key for one target under
// t.KnownHostsName(), whatever address the connection was dialed at.
type HostKeyChecker struct {
	// TODO(phase 1)
}

// NewHostKeyChecker reads the target's known_hosts files.
func NewHostKeyChecker(t *sshcfg.Target, o HostKeyOptions) (*HostKeyChecker, error) {
	panic("not implemented")
}

// Callback is the ssh.HostKeyCallback to put in ssh.ClientConfig.
func (c *HostKeyChecker) Callback() ssh.HostKeyCallback { panic("not implemented") }

// Algorithms are the host key algorithms to offer, those of keys known for
// the host first, for ssh.ClientConfig.HostKeyAlgorithms.
func (c *HostKeyChecker) Algorithms() []string { panic("not implemented") }
