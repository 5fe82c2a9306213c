package transport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// jumpHop resolves the last jump host of t's ProxyJump as ssh does for
// "ProxyJump a,b,c": it runs "ssh -l user -p port -J a,b -F config c", so
// c is resolved under its own name with its own configuration, the user
// and port written in the jump spec win over it, the earlier hops become
// c's own ProxyJump, and the command line's -o options do not apply.
func (d *Dialer) jumpHop(t *sshcfg.Target) (hop, error) {
	extra, last := splitJump(t.ProxyJump)
	user, host, port, err := parseJumpHost(last)
	if err != nil {
		return hop{}, fmt.Errorf("ProxyJump %q of %s: %w", t.ProxyJump, t.Alias, err)
	}
	o := d.Config
	o.Options = nil
	if user != "" {
		o.Options = append(o.Options, "User="+user)
	}
	if port > 0 {
		o.Options = append(o.Options, "Port="+strconv.Itoa(port))
	}
	if extra != "" {
		o.Options = append(o.Options, "ProxyJump="+extra)
	}
	jt, err := sshcfg.Resolve(host, o)
	if err != nil {
		return hop{}, fmt.Errorf("jump host %s for %s: %w", host, t.Alias, err)
	}
	ids, err := agentauth.LoadIdentities(jt, d.IdentityOptions)
	if err != nil {
		return hop{}, fmt.Errorf("jump host %s for %s: %w", host, t.Alias, err)
	}
	hk, err := agentauth.NewHostKeyChecker(jt, d.HostKeyOptions)
	if err != nil {
		ids.Close()
		return hop{}, fmt.Errorf("jump host %s for %s: %w", host, t.Alias, err)
	}
	return hop{t: jt, ids: ids, hk: hk, jumpFor: t.Alias}, nil
}

// splitJump splits a ProxyJump list into the hops before the last one, as
// written, and the last one. Host names cannot hold commas.
func splitJump(jump string) (extra, last string) {
	if i := strings.LastIndexByte(jump, ','); i >= 0 {
		return jump[:i], jump[i+1:]
	}
	return "", jump
}

// parseJumpHost reads one hop in the form sshcfg.Target.ProxyJump holds
// it, ssh -G's: [user@]host[:port], with numeric and IPv6 addresses in
// brackets.
func parseJumpHost(s string) (user, host string, port int, err error) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	rest := ""
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", "", 0, fmt.Errorf("unbalanced brackets in %q", s)
		}
		host, rest = s[1:j], s[j+1:]
	} else {
		host, rest, _ = strings.Cut(s, ":")
		if rest != "" {
			rest = ":" + rest
		}
	}
	if rest != "" {
		p, perr := strconv.Atoi(strings.TrimPrefix(rest, ":"))
		if perr != nil || !strings.HasPrefix(rest, ":") || p <= 0 || p > 65535 {
			return "", "", 0, fmt.Errorf("bad port in %q", s)
		}
		port = p
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("no host in %q", s)
	}
	return user, host, port, nil
}
