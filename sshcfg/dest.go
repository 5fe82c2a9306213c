package sshcfg

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// jumpSpec is a parsed ProxyJump: the last hop, the one that connects to
// the target, apart, the earlier hops as written.
type jumpSpec struct {
	none  bool
	extra string // hops before the last, comma-separated, as written
	user  string
	host  string
	port  int // 0 when not given
}

// parseJump is OpenSSH's parse_jump: every hop must parse; only the last
// one is kept apart. "none" (any case) disables jumping.
func parseJump(s string) (*jumpSpec, error) {
	if strings.EqualFold(s, "none") {
		return &jumpSpec{none: true}, nil
	}
	// ssh drops a comment, but keeps the full text for the earlier hops.
	spec, _, _ := strings.Cut(s, "#")
	spec = strings.TrimRight(spec, " \t\r\n")
	hops := strings.Split(spec, ",")
	j := &jumpSpec{}
	for i := len(hops) - 1; i >= 0; i-- {
		u, h, p, err := parseHop(hops[i])
		if err != nil {
			return nil, err
		}
		if i == len(hops)-1 {
			j.user, j.host, j.port = u, h, p
		}
	}
	if i := strings.LastIndexByte(s, ','); i > 0 {
		j.extra = s[:i]
	}
	return j, nil
}

func parseHop(hop string) (user, host string, port int, err error) {
	if strings.HasPrefix(hop, "ssh://") {
		return parseSSHURI(hop)
	}
	return parseUserHostPort(hop)
}

var errBadHop = errors.New("bad [user@]host[:port]")

// parseUserHostPort is OpenSSH's: user is up to the last "@", the host may
// be a bracketed address, the port follows ":" (or "/").
func parseUserHostPort(s string) (user, host string, port int, err error) {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		if i == 0 {
			return "", "", 0, errBadHop
		}
		user, s = s[:i], s[i+1:]
	}
	host, rest, ok := hpdelim(s)
	if !ok || host == "" {
		return "", "", 0, errBadHop
	}
	if rest != "" {
		if port = parsePort(rest); port <= 0 {
			return "", "", 0, errBadHop
		}
	}
	return user, cleanHostname(host), port, nil
}

// hpdelim splits host from what follows it: after "]" for a bracketed
// address, else at the first ":" or "/".
func hpdelim(s string) (host, rest string, ok bool) {
	i := 0
	if strings.HasPrefix(s, "[") {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return "", "", false
		}
		i = j + 1
	} else if j := strings.IndexAny(s, ":/"); j >= 0 {
		i = j
	} else {
		return s, "", true
	}
	switch {
	case i == len(s):
		return s, "", true
	case s[i] == ':' || s[i] == '/':
		return s[:i], s[i+1:], true
	}
	return "", "", false
}

func cleanHostname(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// parseSSHURI reads ssh://[user[;params]@]host[:port] as ssh's
// parse_uri does; a path is not allowed.
func parseSSHURI(s string) (user, host string, port int, err error) {
	rest := strings.TrimPrefix(s, "ssh://")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		user, rest = rest[:i], rest[i+1:]
		user, _, _ = strings.Cut(user, ";")
		if user, err = url.PathUnescape(user); err != nil || user == "" {
			return "", "", 0, errors.New("bad user in ssh:// URI")
		}
	}
	if strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return "", "", 0, errors.New("bad host in ssh:// URI")
		}
		host, rest = rest[1:j], rest[j+1:]
	} else {
		i := strings.IndexAny(rest, ":/")
		if i < 0 {
			i = len(rest)
		}
		host, rest = rest[:i], rest[i:]
	}
	if host == "" {
		return "", "", 0, errors.New("no host in ssh:// URI")
	}
	if strings.HasPrefix(rest, ":") {
		p, perr := strconv.Atoi(rest[1:])
		if perr != nil || p <= 0 || p > 65535 {
			return "", "", 0, errors.New("bad port in ssh:// URI")
		}
		port, rest = p, ""
	}
	if rest != "" && rest != "/" {
		return "", "", 0, errors.New("ssh:// URI has a path")
	}
	return user, host, port, nil
}

// String is the jump as ssh -G prints it.
func (j *jumpSpec) String() string {
	if j == nil || j.none {
		return ""
	}
	var b strings.Builder
	if j.extra != "" {
		b.WriteString(j.extra + ",")
	}
	if j.user != "" {
		b.WriteString(j.user + "@")
	}
	if strings.Contains(j.host, ":") || strings.Trim(j.host, "0123456789.") == "" {
		b.WriteString("[" + j.host + "]")
	} else {
		b.WriteString(j.host)
	}
	if j.port > 0 {
		b.WriteString(":" + strconv.Itoa(j.port))
	}
	return b.String()
}

// parseDestination splits what ssh accepts as its destination argument.
func parseDestination(dest string) (host, user, port string, err error) {
	if strings.HasPrefix(dest, "ssh://") {
		u, h, p, err := parseSSHURI(dest)
		if err != nil {
			return "", "", "", fmt.Errorf("destination %q: %w", dest, err)
		}
		if p > 0 {
			port = strconv.Itoa(p)
		}
		return h, u, port, nil
	}
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		if i == 0 {
			return "", "", "", fmt.Errorf("destination %q has no user before @", dest)
		}
		user, dest = dest[:i], dest[i+1:]
	}
	if dest == "" {
		return "", "", "", errors.New("no host name")
	}
	return dest, user, "", nil
}

func validHostname(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	for _, c := range []byte(s) {
		if strings.IndexByte("'`\"$\\;&<>|(){},", c) >= 0 || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

func validRemoteUser(s string) bool {
	if strings.HasPrefix(s, "-") || strings.HasSuffix(s, "\\") {
		return false
	}
	for i, c := range []byte(s) {
		if strings.IndexByte("'`\"$\\;&<>|(){}", c) >= 0 {
			return false
		}
		if isSpace(c) && i+1 < len(s) && s[i+1] == '-' {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
