package sshcfg

import (
	"fmt"
	"slices"
	"strings"
)

// An algorithmList is one of ssh's algorithm keywords: what ssh proposes
// when the configuration is silent, every name it knows, and how it checks
// a line. The lists are those of the OpenSSH the differential test runs
// against, 9.2p1 as Debian 12 builds it (ssh -G and ssh -Q print them;
// Debian adds sntrup761x25519-sha512 to the key exchanges of
// myproposal.h).
type algorithmList struct {
	// keyword is the lowercase keyword, as ssh -G prints it.
	keyword string
	def     string
	// all are the names patterns select from, in ssh -Q's order.
	all []string
	// valid are the names a line may name; nil means all. Key type
	// keywords take any key or signature name, and patterns matching
	// one; the others take exact names only.
	valid    []string
	patterns bool
}

// The name lists of OpenSSH 9.2p1 (Debian), as ssh -Q prints them.
var (
	allCiphers = strings.Split("3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,"+
		"aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"+
		"aes256-gcm@openssh.com,chacha20-poly1305@openssh.com", ",")
	allMACs = strings.Split("hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,"+
		"hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,"+
		"hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,"+
		"hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"+
		"hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,"+
		"umac-64-etm@openssh.com,umac-128-etm@openssh.com", ",")
	allKex = strings.Split("diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,"+
		"diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,"+
		"diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,"+
		"diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,"+
		"ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,"+
		"curve25519-sha256@libssh.org,sntrup761x25519-sha512,"+
		"sntrup761x25519-sha512@openssh.com", ",")
	// allSignatureAlgorithms is ssh -Q sig: the plain key and signature
	// names, which CASignatureAlgorithms selects from.
	allSignatureAlgorithms = strings.Split("ssh-ed25519,sk-ssh-ed25519@openssh.com,"+
		"ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"+
		"sk-ecdsa-sha2-nistp256@openssh.com,"+
		"webauthn-sk-ecdsa-sha2-nistp256@openssh.com,"+
		"ssh-dss,ssh-rsa,rsa-sha2-256,rsa-sha2-512", ",")
)

// The defaults, as ssh -G prints them with no configuration.
const (
	defaultCiphers = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr," +
		"aes128-gcm@openssh.com,aes256-gcm@openssh.com"
	defaultMACs = "umac-64-etm@openssh.com,umac-128-etm@openssh.com," +
		"hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com," +
		"hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com," +
		"hmac-sha2-256,hmac-sha2-512,hmac-sha1"
	defaultKex = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com," +
		"curve25519-sha256,curve25519-sha256@libssh.org," +
		"ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," +
		"diffie-hellman-group-exchange-sha256," +
		"diffie-hellman-group16-sha512,diffie-hellman-group18-sha512," +
		"diffie-hellman-group14-sha256"
	// defaultCASignatureAlgorithms is SSH_ALLOWED_CA_SIGALGS.
	defaultCASignatureAlgorithms = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384," +
		"ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com," +
		"sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)

// algorithmLists are the keywords by lowercase name.
var algorithmLists = map[string]*algorithmList{
	"ciphers":       {keyword: "ciphers", def: defaultCiphers, all: allCiphers},
	"macs":          {keyword: "macs", def: defaultMACs, all: allMACs},
	"kexalgorithms": {keyword: "kexalgorithms", def: defaultKex, all: allKex},
	"hostkeyalgorithms": {keyword: "hostkeyalgorithms", def: defaultHostKeyAlgorithms,
		all: allHostKeyAlgorithms, patterns: true},
	"pubkeyacceptedalgorithms": {keyword: "pubkeyacceptedalgorithms", def: defaultHostKeyAlgorithms,
		all: allHostKeyAlgorithms, patterns: true},
	"hostbasedacceptedalgorithms": {keyword: "hostbasedacceptedalgorithms", def: defaultHostKeyAlgorithms,
		all: allHostKeyAlgorithms, patterns: true},
	"casignaturealgorithms": {keyword: "casignaturealgorithms", def: defaultCASignatureAlgorithms,
		all: allSignatureAlgorithms, valid: allHostKeyAlgorithms, patterns: true},
}

// checkSpec is readconf.c's test of a line: after a leading "+" or "^",
// every name up to the first empty one is known (key types: or a pattern
// that matches or negates one). A "-" list is not checked.
func (a *algorithmList) checkSpec(spec string) bool {
	if strings.HasPrefix(spec, "-") {
		return true
	}
	if spec != "" && (spec[0] == '+' || spec[0] == '^') {
		spec = spec[1:]
	}
	if spec == "" {
		return false
	}
	valid := a.valid
	if valid == nil {
		valid = a.all
	}
	for _, n := range strings.Split(spec, ",") {
		if n == "" {
			break // ssh stops at an empty element
		}
		if slices.Contains(valid, n) {
			continue
		}
		if !a.patterns || !slices.ContainsFunc(valid, func(v string) bool { return matchPatternList(v, n, false) != 0 }) {
			return false
		}
	}
	return true
}

// resolve is the list ssh proposes for spec ("" for the default).
func (a *algorithmList) resolve(spec string) (string, error) {
	list, ok := assembleAlgorithms(spec, a.def, a.all)
	if !ok {
		return "", fmt.Errorf("%s %q selects no algorithm", a.name(), spec)
	}
	return list, nil
}

// name is the keyword as OpenSSH's manual writes it.
func (a *algorithmList) name() string {
	for _, n := range algorithmNames {
		if lower(n) == a.keyword {
			return n
		}
	}
	return a.keyword
}

var algorithmNames = []string{"Ciphers", "MACs", "KexAlgorithms", "HostKeyAlgorithms",
	"PubkeyAcceptedAlgorithms", "HostbasedAcceptedAlgorithms", "CASignatureAlgorithms"}

// algorithmsKeyword is Ciphers, MACs, KexAlgorithms and the key type
// keywords: one list, checked as ssh checks it, the first line winning.
func algorithmsKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return err
	}
	kw := c.keyword
	if alias, ok := keywordAliases[kw]; ok {
		kw = alias
	}
	al := algorithmLists[kw]
	if !al.checkSpec(a) {
		return fmt.Errorf("bad %s list %q", al.name(), a)
	}
	if c.active {
		r.cfg.setStr(kw, a)
	}
	return nil
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

// Written returns the algorithms of keyword (any case: "Ciphers",
// "KexAlgorithms", ...) that the configuration named itself, patterns
// expanded, as opposed to those it took from OpenSSH's default list: the
// names after a "+" or "^", or the whole of an explicit list. It is empty
// when the keyword was not set or only removed names.
func (t *Target) Written(keyword string) []string {
	al := algorithmLists[lower(keyword)]
	spec := t.specs[lower(keyword)]
	if al == nil || spec == "" || spec[0] == '-' {
		return nil
	}
	if spec[0] == '+' || spec[0] == '^' {
		spec = spec[1:]
	}
	list, _ := assembleAlgorithms(spec, "", al.all)
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// OrderChosen reports whether the configuration chose the order of an
// algorithm keyword's list (any case): a list given in full or with "^".
// Unset, or only appended to ("+") or removed from ("-"), the order is
// OpenSSH's default's, which says nothing of what the user prefers.
func (t *Target) OrderChosen(keyword string) bool {
	spec := t.specs[lower(keyword)]
	return spec != "" && spec[0] != '+' && spec[0] != '-'
}

// PreferKnownHostKeys reports whether ssh reorders HostKeyAlgorithms to
// put the types known_hosts holds for the host first: when the user did
// not choose the order, as ssh_kex2 decides.
func (t *Target) PreferKnownHostKeys() bool { return !t.OrderChosen("HostKeyAlgorithms") }

// DefaultAlgorithms is OpenSSH's default list for an algorithm keyword
// (any case), as ssh -G prints it; "" for another keyword. A Target built
// by hand, not by Resolve, has empty lists, which mean these.
func DefaultAlgorithms(keyword string) string {
	if al := algorithmLists[lower(keyword)]; al != nil {
		return al.def
	}
	return ""
}
