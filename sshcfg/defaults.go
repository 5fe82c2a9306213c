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

// validKeyAlgorithms is sshkey_names_valid2 with wildcards allowed: each
// name is known or, as a pattern, matches (or negates) a known one.
func validKeyAlgorithms(names string) bool {
	for _, n := range strings.Split(names, ",") {
		if n == "" {
			break // ssh stops at an empty element
		}
		ok := false
		for _, a := range allHostKeyAlgorithms {
			if a == n || matchPatternList(a, n, false) != 0 {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// assembleAlgorithms is kex_assemble_names: "+" appends to the default
// list, "-" removes from it, "^" puts names in front of it, anything else
// replaces it; patterns are then expanded against every known algorithm.
func assembleAlgorithms(spec, def string, all []string) (string, bool) {
	if spec == "" {
		return def, true
	}
	list := spec
	switch spec[0] {
	case '+':
		list = catNames(def, spec[1:])
	case '-':
		var kept []string
		for _, n := range strings.Split(def, ",") {
			if matchPatternList(n, spec[1:], false) != 1 {
				kept = append(kept, n)
			}
		}
		return strings.Join(kept, ","), true
	case '^':
		list = catNames(spec[1:], def)
	}
	var out string
	for _, p := range strings.Split(list, ",") {
		if strings.HasPrefix(p, "!") {
			return "", false
		}
		var matching []string
		for _, a := range all {
			if matchPatternList(a, p, false) == 1 {
				matching = append(matching, a)
			}
		}
		out = catNames(out, strings.Join(matching, ","))
	}
	return out, out != ""
}

// catNames is kex_names_cat: a, then the names of b not already present.
func catNames(a, b string) string {
	if a == "" {
		return b
	}
	names := strings.Split(a, ",")
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range strings.Split(b, ",") {
		if n == "" {
			break
		}
		if !have[n] {
			have[n] = true
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}
