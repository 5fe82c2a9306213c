// Package secretenv names the environment variables through which a user
// hands m2m-ssh a secret, and keeps them out of everything m2m-ssh starts
// (ProxyCommand, Match exec, SSH_ASKPASS) or sends to a server (SendEnv).
// A secret given to m2m-ssh is for m2m-ssh alone: a ProxyCommand is often
// a third-party program, and a server's SendEnv acceptance is the server
// admin's choice, not the user's.
package secretenv

import (
	"os"
	"strings"
)

const (
	// Key holds a private key's text, for CI jobs without files.
	Key = "M2M_SSH_KEY"
	// Passphrase holds the passphrase of encrypted keys; unlike
	// --passphrase it does not show in process listings.
	Passphrase = "M2M_SSH_PASSPHRASE"
)

// Is reports whether the variable name carries one of m2m-ssh's secrets.
// Environment names are case-sensitive on Unix; on Windows they are not,
// and a child would see M2m_Ssh_Key as the same variable, so the check
// ignores case everywhere: no legitimate variable differs from these by
// case alone.
func Is(name string) bool {
	return strings.EqualFold(name, Key) || strings.EqualFold(name, Passphrase)
}

// scrub returns env (NAME=VALUE entries) without the secret variables.
// It returns a new slice; env is not changed.
func scrub(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !Is(name) {
			out = append(out, kv)
		}
	}
	return out
}

// Environ is the environment for a child process: this process's, without
// the secret variables.
func Environ() []string { return scrub(os.Environ()) }
