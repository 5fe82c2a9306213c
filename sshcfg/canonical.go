package sshcfg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver is what hostname canonicalization looks names up with;
// net.DefaultResolver is one. Tests give their own, so that no lookup
// leaves the process.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupCNAME(ctx context.Context, host string) (string, error)
}

// lookupTimeout bounds one canonicalization lookup: the system resolver's
// own retries give up in about this time, and Resolve must not hang on a
// dead name server.
const lookupTimeout = 10 * time.Second

// maxCanonicalDomains is MAX_CANON_DOMAINS: ssh takes no more suffixes
// or CNAME rules than this.
const maxCanonicalDomains = 32

// A cnameRule is one CanonicalizePermittedCNAMEs entry: names matching
// source may be replaced by their CNAME when it matches target.
type cnameRule struct{ source, target string }

// canonicalDomainsKeyword is CanonicalDomains: the first line that sets
// anything sets the whole list, each domain checked and lowercased.
func canonicalDomainsKeyword(r *resolver, c *call) error {
	set := len(r.cfg.canonicalDomains) != 0
	for i, a := range c.args {
		if a == "" {
			return fmt.Errorf("keyword %s empty argument", c.keyword)
		}
		if lower(a) == "none" && (i > 0 || len(c.args) > 1) {
			return fmt.Errorf("keyword %s \"none\" argument must appear alone", c.keyword)
		}
		d, err := validDomain(a)
		if err != nil {
			return err
		}
		if !c.active || set {
			continue
		}
		if len(r.cfg.canonicalDomains) >= maxCanonicalDomains {
			return errors.New("too many hostname suffixes")
		}
		r.cfg.canonicalDomains = append(r.cfg.canonicalDomains, d)
		r.cfg.explicit[c.keyword] = true
	}
	c.args = nil
	return nil
}

// validDomain is misc.c's valid_domain with makelower: the name
// lowercased and without a trailing dot.
func validDomain(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty domain name")
	}
	if b := name[0]; !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9') {
		return "", fmt.Errorf("domain name %q starts with invalid character", name)
	}
	name = lower(name)
	last := byte(0)
	for i := 0; i < len(name); i++ {
		b := name[i]
		if last == '.' && b == '.' {
			return "", fmt.Errorf("domain name %q contains consecutive separators", name)
		}
		if !(b == '.' || b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9') {
			return "", fmt.Errorf("domain name %q contains invalid characters", name)
		}
		last = b
	}
	return strings.TrimSuffix(name, "."), nil
}

// permittedCNAMEsKeyword is CanonicalizePermittedCNAMEs: "none" alone,
// "*", or source:target pattern lists; the first line sets the whole list.
func permittedCNAMEsKeyword(r *resolver, c *call) error {
	set := len(r.cfg.permittedCNAMEs) != 0
	for i, a := range c.args {
		var rule cnameRule
		switch {
		case lower(a) == "none":
			if i > 0 || len(c.args) > 1 {
				return fmt.Errorf("keyword %s \"none\" argument must appear alone", c.keyword)
			}
			rule = cnameRule{source: a}
		case a == "*":
			rule = cnameRule{source: a, target: a}
		default:
			src, dst, ok := strings.Cut(lower(a), ":")
			if !ok || dst == "" {
				return fmt.Errorf("invalid permitted CNAME %q", a)
			}
			rule = cnameRule{source: src, target: dst}
		}
		if !c.active || set {
			continue
		}
		if len(r.cfg.permittedCNAMEs) >= maxCanonicalDomains {
			return errors.New("too many permitted CNAMEs")
		}
		r.cfg.permittedCNAMEs = append(r.cfg.permittedCNAMEs, rule)
		r.cfg.explicit[c.keyword] = true
	}
	c.args = nil
	return nil
}

// canonicalizeKeyword is CanonicalizeHostname: a flag or "always".
func canonicalizeKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	v, ok := parseFlag(a)
	if lower(a) == "always" {
		v, ok = "always", true
	}
	if !ok {
		return fmt.Errorf("unsupported option %q", a)
	}
	if c.active {
		r.cfg.setStr(c.keyword, v)
	}
	return nil
}

// canonicalDefaults is fill_default_options_for_canonicalization: after
// the first pass these are fixed, so the canonical pass cannot change
// them.
func (r *resolver) canonicalDefaults() {
	for kw, def := range map[string]string{
		"canonicalizemaxdots":       "1",
		"canonicalizefallbacklocal": "yes",
		"canonicalizehostname":      "no",
	} {
		if _, ok := r.cfg.str[kw]; !ok {
			r.cfg.str[kw] = def
		}
	}
}

// hasPermittedCNAMEs is config_has_permitted_cnames.
func (r *resolver) hasPermittedCNAMEs() bool {
	p := r.cfg.permittedCNAMEs
	if len(p) == 1 && lower(p[0].source) == "none" && p[0].target == "" {
		return false
	}
	return len(p) > 0
}

// direct reports that ssh would connect itself, not through a
// ProxyCommand or jump host, which would interpret the name their way.
func (r *resolver) direct() bool {
	pc, ok := r.cfg.str["proxycommand"]
	return (!ok || lower(pc) == "none") && r.cfg.jump == nil
}

// canonicalizeHost is what ssh.c does to the host name between its two
// passes over the configuration: an address is put in its canonical form
// (with or without CanonicalizeHostname), a name gets the first of
// CanonicalDomains under which it resolves, and its CNAME when
// CanonicalizePermittedCNAMEs allows.
func (r *resolver) canonicalizeHost(host string, wasAddr bool) (string, error) {
	mode := r.cfg.str["canonicalizehostname"]
	resolved := false
	if mode != "no" || wasAddr {
		var err error
		if host, resolved, err = r.resolveCanonical(host); err != nil {
			return "", err
		}
	}
	// ssh also looks a bare name up to follow its CNAME; it changes the
	// name only when canonicalizing. (With CanonicalizeHostname no, ssh
	// makes the lookup only to fail early; the dial does that here.)
	if !resolved && mode != "no" && r.hasPermittedCNAMEs() && (r.direct() || mode == "always") {
		if _, cname, err := r.lookup(host); err == nil {
			host = r.followCNAME(host, cname)
		}
	}
	return host, nil
}

// resolveCanonical is resolve_canonicalize: the name it settles on and
// whether it resolved it.
func (r *resolver) resolveCanonical(host string) (string, bool, error) {
	if a, ok := canonicalAddr(host, r.cfg.str["addressfamily"]); ok {
		if strings.EqualFold(a, host) {
			a = host // ssh keeps the spelling when only case differs
		}
		return a, true, nil
	}
	if isAddrFast(host) {
		return host, false, nil // an address ssh could not parse: left alone
	}
	mode := r.cfg.str["canonicalizehostname"]
	if mode == "no" || (!r.direct() && mode != "always") {
		return host, false, nil
	}
	var candidates []string
	if strings.HasSuffix(host, ".") {
		candidates = []string{host}
	} else {
		maxDots, _ := strconv.Atoi(r.cfg.str["canonicalizemaxdots"])
		if strings.Count(host, ".") > maxDots {
			return host, false, nil
		}
		for _, d := range r.cfg.canonicalDomains {
			if lower(d) == "none" {
				break
			}
			candidates = append(candidates, host+"."+d+".")
		}
	}
	for _, full := range candidates {
		found, cname, err := r.lookup(full)
		if err != nil || !found {
			continue
		}
		full = strings.TrimSuffix(full, ".")
		return r.followCNAME(full, cname), true, nil
	}
	if r.cfg.str["canonicalizefallbacklocal"] == "no" {
		return "", false, &CanonicalizeError{Host: host, Domains: r.cfg.canonicalDomains}
	}
	return host, false, nil
}

// lookup resolves name in the AddressFamily, as resolve_host does with
// AI_CANONNAME: whether it has an address, and its canonical name.
func (r *resolver) lookup(name string) (bool, string, error) {
	res := r.opts.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, err := res.LookupHost(ctx, name)
	if err != nil {
		return false, "", err
	}
	found := false
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && FamilyAllows(r.cfg.str["addressfamily"], ip) {
			found = true
		}
	}
	if !found {
		return false, "", nil
	}
	cname, err := res.LookupCNAME(ctx, name)
	if err != nil {
		return true, "", nil
	}
	cname = strings.TrimSuffix(cname, ".")
	if _, err := validDomain(cname); err != nil {
		r.log.Warn("ignoring bad CNAME", "host", name, "cname", cname, "err", err)
		return true, "", nil
	}
	return true, cname, nil
}

// followCNAME is check_follow_cname: name becomes cname when a rule's
// source matches name and its target matches cname.
func (r *resolver) followCNAME(name, cname string) string {
	mode := r.cfg.str["canonicalizehostname"]
	if cname == "" || !r.hasPermittedCNAMEs() || name == cname || mode == "no" {
		return name
	}
	if !r.direct() && mode != "always" {
		return name
	}
	for _, rule := range r.cfg.permittedCNAMEs {
		if matchPatternList(name, rule.source, true) == 1 && matchPatternList(cname, rule.target, true) == 1 {
			return cname
		}
	}
	return name
}

// FamilyAllows reports whether AddressFamily (any, inet or inet6)
// allows ip, an IPv4-mapped IPv6 address counting as IPv4.
func FamilyAllows(family string, ip netip.Addr) bool {
	switch family {
	case "inet":
		return ip.Unmap().Is4()
	case "inet6":
		return ip.Is6() && !ip.Is4In6()
	}
	return true
}

// isAddrFast is ssh.c's is_addr_fast: a name that can only be an address.
func isAddrFast(name string) bool {
	return strings.ContainsAny(name, "%:") || strings.Trim(name, "0123456789.") == ""
}

// isAddr is ssh.c's is_addr: a name that is one numeric address.
func isAddr(name, family string) bool {
	if isAddrFast(name) {
		return true
	}
	_, ok := canonicalAddr(name, family)
	return ok
}

// canonicalAddr is resolve_addr: name parsed as getaddrinfo parses a
// numeric host (IPv4 in inet_aton's forms: 127.1, 0x7f.0.0.1, 017.0.0.1,
// 2130706433), printed as getnameinfo prints it.
func canonicalAddr(name, family string) (string, bool) {
	if v4, ok := inetAton(name); ok {
		if family == "inet6" {
			return "", false
		}
		return v4.String(), true
	}
	addr, zone, _ := strings.Cut(name, "%")
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() || family == "inet" {
		return "", false
	}
	if zone != "" {
		if _, err := strconv.ParseUint(zone, 10, 32); err != nil {
			if _, err := net.InterfaceByName(zone); err != nil {
				return "", false
			}
		}
		ip = ip.WithZone(zone)
	}
	return ip.String(), true
}

// inetAton parses an IPv4 address as inet_aton does: one to four parts,
// each decimal, octal (leading 0) or hex (0x), the last filling the bytes
// left.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 || s == "" {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0" // "0x" alone is zero to inet_aton
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" || strings.ContainsAny(p[:1], "+-") {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// CanonicalizeError is a name that resolves under none of
// CanonicalDomains when CanonicalizeFallbackLocal is no.
type CanonicalizeError struct {
	Host    string
	Domains []string
}

func (e *CanonicalizeError) Error() string {
	return fmt.Sprintf("Could not resolve host %q under CanonicalDomains %s", e.Host, strings.Join(e.Domains, " "))
}

// Permanent: the configuration or the DNS must change, and ssh gives up
// the same way.
func (e *CanonicalizeError) Permanent() bool { return true }

func (e *CanonicalizeError) Hint() string {
	return "check the host name and CanonicalDomains, or set CanonicalizeFallbackLocal yes to use the name as given"
}
