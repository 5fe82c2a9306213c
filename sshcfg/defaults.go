package sshcfg

import (
	"strings"
	"time"
)

// OpenSSH 9's defaults, where readconf.c's fill_default_options puts them.
var (
	// defaultIdentityFiles are offered only when no IdentityFile is
	// configured. (ssh_config's own default is SSH-1's ~/.ssh/identity.)
	defaultIdentityFiles = []string{
		"~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk",
		"~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss",
		"~/.ssh/id_dsa",
	}
	defaultUserKnownHosts   = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	defaultGlobalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
)

const (
	defaultStrictHostKeyChecking = "ask"
	defaultServerAliveCountMax   = 3
	defaultLogLevel              = "INFO"
	// defaultNumberOfPasswordPrompts is ssh's: three tries each.
	defaultNumberOfPasswordPrompts = 3
	// batchServerAliveInterval is ssh's keepalive in BatchMode when
	// ServerAliveInterval is not set.
	batchServerAliveInterval = 300 * time.Second
)

// defaultHostKeyAlgorithms is KEX_DEFAULT_PK_ALG of OpenSSH 9.2.
const defaultHostKeyAlgorithms = "ssh-ed25519-cert-v01@openssh.com," +
	"ecdsa-sha2-nistp256-cert-v01@openssh.com," +
	"ecdsa-sha2-nistp384-cert-v01@openssh.com," +
	"ecdsa-sha2-nistp521-cert-v01@openssh.com," +
	"sk-ssh-ed25519-cert-v01@openssh.com," +
	"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com," +
	"rsa-sha2-512-cert-v01@openssh.com," +
	"rsa-sha2-256-cert-v01@openssh.com," +
	"ssh-ed25519," +
	"ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521," +
	"sk-ssh-ed25519@openssh.com," +
	"sk-ecdsa-sha2-nistp256@openssh.com," +
	"rsa-sha2-512,rsa-sha2-256"

// allHostKeyAlgorithms is every key and signature algorithm OpenSSH 9.2
// knows, in its order (ssh -Q HostKeyAlgorithms): patterns in
// HostKeyAlgorithms select from it.
var allHostKeyAlgorithms = strings.Split("ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,"+
	"sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,"+
	"ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,"+
	"ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,"+
	"ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,"+
	"sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"+
	"webauthn-sk-ecdsa-sha2-nistp256@openssh.com,"+
	"ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,"+
	"rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,"+
	"rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com", ",")
