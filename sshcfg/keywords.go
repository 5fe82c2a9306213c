package sshcfg

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// settings are what the configuration said, before defaults, in the form
// readconf.c keeps them: the first value obtained for a keyword wins.
type settings struct {
	// str holds single-valued keywords by lowercase name, already
	// checked and in a canonical form ("yes", seconds, ...).
	str      map[string]string
	explicit map[string]bool

	identityFiles    []pathArg
	certificateFiles []pathArg
	userKnownHosts   []string
	globalKnownHosts []string
	setEnv           []string
	sendEnv          []string
	canonicalDomains []string
	permittedCNAMEs  []cnameRule
	// jump is the ProxyJump that won the slot it shares with
	// ProxyCommand; str["proxycommand"] is the other way to win it.
	jump *jumpSpec
}

// A pathArg is an IdentityFile or CertificateFile as written. ssh drops a
// repeated path only when it comes from the same kind of file (user or
// system), so the kind is kept.
type pathArg struct {
	path string
	user bool
}

func (s *settings) setStr(kw, v string) {
	if _, ok := s.str[kw]; !ok {
		s.str[kw] = v
		s.explicit[kw] = true
	}
}

// A call is one line being applied: its words, consumed left to right.
type call struct {
	*line
	args   []string
	active bool
	src    *source // nil for -o
}

func (c *call) next() (string, bool) {
	if len(c.args) == 0 {
		return "", false
	}
	a := c.args[0]
	c.args = c.args[1:]
	return a, true
}

// arg is the next word, which must be present and not empty.
func (c *call) arg() (string, error) {
	a, ok := c.next()
	if !ok || a == "" {
		return "", errors.New("missing argument")
	}
	return a, nil
}

// apply processes one line as process_config_line_depth does. An error
// means ssh would reject the line; the caller warns and goes on.
func (r *resolver) apply(ln *line, src *source) (err error) {
	if src != nil && (ln.keyword == "host" || ln.keyword == "match") {
		// A block whose condition cannot be read applies to nothing:
		// better no settings than another block's.
		defer func() {
			if err != nil {
				*src.active = false
			}
		}()
	}
	if ln.rest == "" {
		return fmt.Errorf("no argument after keyword %q", ln.keyword)
	}
	args, err := splitArgs(ln.rest)
	if err != nil {
		return err
	}
	c := &call{line: ln, args: args, active: true, src: src}
	if src != nil {
		c.active = *src.active
	}
	kw := ln.keyword
	if alias, ok := keywordAliases[kw]; ok {
		kw = alias
	}
	if h, ok := handlers[kw]; ok {
		err = h(r, c)
	} else if note, ok := notHonoured[kw]; ok {
		if c.active && note != "" {
			r.log.Warn(""+ln.keyword+" is not honoured: "+note, "file", ln.file, "line", ln.num)
		}
		c.args = nil
	} else if ignoredKeywords[kw] {
		c.args = nil
	} else if ign, ok := r.cfg.str["ignoreunknown"]; ok && matchPatternList(kw, ign, true) == 1 {
		c.args = nil
	} else {
		return fmt.Errorf("unknown keyword %q", ln.keyword)
	}
	if err != nil {
		return err
	}
	if len(c.args) > 0 {
		return fmt.Errorf("keyword %s has extra arguments at end of line", ln.keyword)
	}
	return nil
}

type handler func(r *resolver, c *call) error

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"host":                        (*resolver).hostKeyword,
		"match":                       (*resolver).matchKeyword,
		"include":                     (*resolver).includeKeyword,
		"hostname":                    stringKeyword,
		"user":                        stringKeyword,
		"hostkeyalias":                stringKeyword,
		"ignoreunknown":               stringKeyword,
		"port":                        portKeyword,
		"identityfile":                pathKeyword,
		"certificatefile":             pathKeyword,
		"identitiesonly":              flagKeyword,
		"batchmode":                   flagKeyword,
		"hashknownhosts":              flagKeyword,
		"forwardagent":                forwardAgentKeyword,
		"identityagent":               identityAgentKeyword,
		"userknownhostsfile":          fileListKeyword,
		"globalknownhostsfile":        fileListKeyword,
		"stricthostkeychecking":       strictKeyword,
		"connecttimeout":              timeKeyword,
		"serveraliveinterval":         timeKeyword,
		"serveralivecountmax":         intKeyword,
		"proxycommand":                commandKeyword,
		"remotecommand":               commandKeyword,
		"proxyjump":                   proxyJumpKeyword,
		"setenv":                      setEnvKeyword,
		"sendenv":                     sendEnvKeyword,
		"loglevel":                    logLevelKeyword,
		"canonicalizehostname":        canonicalizeKeyword,
		"addressfamily":               addressFamilyKeyword,
		"bindaddress":                 stringKeyword,
		"bindinterface":               stringKeyword,
		"connectionattempts":          intKeyword,
		"canonicaldomains":            canonicalDomainsKeyword,
		"canonicalizemaxdots":         intKeyword,
		"canonicalizefallbacklocal":   flagKeyword,
		"canonicalizepermittedcnames": permittedCNAMEsKeyword,

		"preferredauthentications":     stringKeyword,
		"passwordauthentication":       flagKeyword,
		"kbdinteractiveauthentication": flagAs("kbdinteractiveauthentication"),
		"pubkeyauthentication":         pubkeyKeyword,
		"numberofpasswordprompts":      intKeyword,
		"knownhostscommand":            commandKeyword,
		"checkhostip":                  flagKeyword,

		"controlpath":    stringKeyword,
		"controlmaster":  controlMasterKeyword,
		"controlpersist": controlPersistKeyword,
	}
	for kw := range algorithmLists {
		handlers[kw] = algorithmsKeyword
	}
}

func (r *resolver) hostKeyword(c *call) error {
	if c.src == nil {
		return errors.New("a Host line is not supported as a command-line option")
	}
	active := false
	for _, p := range c.args {
		if p == "" {
			*c.src.active = active
			return errors.New("empty Host pattern")
		}
	}
	if !c.src.neverMatch {
		active = hostLine(r.host, c.args)
	}
	c.args = nil
	*c.src.active = active
	r.noteBlock(c, active)
	return nil
}

func (r *resolver) matchKeyword(c *call) error {
	if c.src == nil {
		return errors.New("a Match line is not supported as a command-line option")
	}
	c.args = nil // Match reads the raw line itself
	ok, err := r.matchLine(c.line)
	*c.src.active = ok && !c.src.neverMatch
	r.noteBlock(c, *c.src.active)
	return err
}

func stringKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err == nil && c.active {
		r.cfg.setStr(c.keyword, a)
	}
	return err
}

func portKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return err
	}
	p := parsePort(a)
	if p <= 0 {
		return fmt.Errorf("bad port %q", a)
	}
	if c.active {
		r.cfg.setStr("port", strconv.Itoa(p))
	}
	return nil
}

// parsePort is OpenSSH's a2port: a number from 0 to 65535 or a service
// name from /etc/services; -1 when neither.
func parsePort(s string) int {
	if n, ok := strtonum(s, 0, 65535); ok {
		return n
	}
	if p, err := net.LookupPort("tcp", s); err == nil && s != "" {
		return p
	}
	return -1
}

// strtonum is OpenBSD's strtonum: a decimal integer, optional blanks and
// sign before it, within [min, max].
func strtonum(s string, min, max int) (int, bool) {
	n, err := strconv.ParseInt(strings.TrimLeft(s, " \t\n\v\f\r"), 10, 64)
	if err != nil || n < int64(min) || n > int64(max) {
		return 0, false
	}
	return int(n), true
}

func pathKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil || !c.active {
		return err
	}
	user := c.src == nil || c.src.user
	list := &r.cfg.identityFiles
	if c.keyword == "certificatefile" {
		list = &r.cfg.certificateFiles
	}
	for _, p := range *list {
		if p.path == a && p.user == user {
			return nil
		}
	}
	if len(*list) >= 100 {
		return fmt.Errorf("too many %s lines (max 100)", c.keyword)
	}
	*list = append(*list, pathArg{path: a, user: user})
	r.cfg.explicit[c.keyword] = true
	return nil
}

// parseFlag reads yes/no/true/false in any case, as multistate_flag.
func parseFlag(a string) (string, bool) {
	switch lower(a) {
	case "yes", "true":
		return "yes", true
	case "no", "false":
		return "no", true
	}
	return "", false
}

func flagKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	v, ok := parseFlag(a)
	if !ok {
		return fmt.Errorf("unsupported option %q", a)
	}
	if c.active {
		r.cfg.setStr(c.keyword, v)
	}
	return nil
}

// forwardAgentKeyword takes a flag or, as ssh does, a socket path that
// both turns forwarding on and names what to forward.
func forwardAgentKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return err
	}
	if v, ok := parseFlag(a); ok {
		if c.active {
			r.cfg.setStr("forwardagent", v)
		}
		return nil
	}
	if c.active {
		r.cfg.setStr("forwardagent", "yes")
	}
	return r.agentPath(c, a, "forwardagent-socket")
}

func identityAgentKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return err
	}
	return r.agentPath(c, a, "identityagent")
}

// agentPath checks a socket path as parse_agent_path does: ${NAME} must be
// set now, and a leading $NAME must be a valid name.
func (r *resolver) agentPath(c *call, a, slot string) error {
	if _, err := (tokens(nil)).expand(a, true, r.getenv); err != nil {
		return fmt.Errorf("invalid environment expansion %s: %w", a, err)
	}
	if strings.HasPrefix(a, "$") && !strings.HasPrefix(a, "${") && !validEnvName(a[1:]) {
		return fmt.Errorf("invalid environment name %s", a)
	}
	if c.active {
		if _, ok := r.cfg.str[slot]; !ok {
			r.cfg.str[slot] = a
			r.cfg.explicit[c.keyword] = true
		}
	}
	return nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// fileListKeyword is UserKnownHostsFile and GlobalKnownHostsFile: the first
// line sets the whole list.
func fileListKeyword(r *resolver, c *call) error {
	list := &r.cfg.userKnownHosts
	if c.keyword == "globalknownhostsfile" {
		list = &r.cfg.globalKnownHosts
	}
	unset := *list == nil
	for i, a := range c.args {
		if a == "" {
			return fmt.Errorf("keyword %s empty argument", c.keyword)
		}
		if lower(a) == "none" && len(c.args) > 1 {
			return fmt.Errorf("keyword %s \"none\" argument must appear alone", c.keyword)
		}
		if c.active && unset {
			if i >= 32 {
				return fmt.Errorf("too many %s entries", c.keyword)
			}
			*list = append(*list, a)
			r.cfg.explicit[c.keyword] = true
		}
	}
	c.args = nil
	return nil
}

// strictValues maps what multistate_strict_hostkey accepts to the
// Target's four values.
var strictValues = map[string]string{
	"true": "yes", "yes": "yes",
	"false": "no", "no": "no", "off": "no",
	"ask":        "ask",
	"accept-new": "accept-new",
}

func strictKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	v, ok := strictValues[lower(a)]
	if !ok {
		return fmt.Errorf("unsupported option %q", a)
	}
	if c.active {
		r.cfg.setStr(c.keyword, v)
	}
	return nil
}

// timeKeyword is parse_time: "none" leaves the keyword unset, so a later
// line may still set it, exactly as in ssh.
func timeKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return errors.New("missing time value")
	}
	if a == "none" {
		return nil
	}
	secs, ok := convtime(a)
	if !ok {
		return fmt.Errorf("invalid time value %q", a)
	}
	if c.active {
		r.cfg.setStr(c.keyword, strconv.Itoa(secs))
	}
	return nil
}

// convtime is OpenSSH's: a sum of numbers each with an optional unit
// s, m, h, d or w (either case).
func convtime(s string) (int, bool) {
	const maxInt = 1<<31 - 1
	if s == "" {
		return 0, false
	}
	total := 0
	for s != "" {
		// strtol: optional blanks and sign, then digits.
		i := len(s) - len(strings.TrimLeft(s, " \t\n\v\f\r"))
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return 0, false
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil || n > maxInt {
			return 0, false
		}
		if neg {
			if n != 0 {
				return 0, false
			}
		}
		mult := 1
		s = s[j:]
		if s != "" {
			switch s[0] {
			case 's', 'S':
			case 'm', 'M':
				mult = 60
			case 'h', 'H':
				mult = 60 * 60
			case 'd', 'D':
				mult = 24 * 60 * 60
			case 'w', 'W':
				mult = 7 * 24 * 60 * 60
			default:
				return 0, false
			}
			s = s[1:]
		}
		if n > maxInt/mult {
			return 0, false
		}
		n *= mult
		if total > maxInt-n {
			return 0, false
		}
		total += n
	}
	return total, true
}

func intKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	n, ok := strtonum(a, 0, 1<<31-1)
	if !ok {
		return fmt.Errorf("integer value %q is invalid", a)
	}
	if c.active {
		r.cfg.setStr(c.keyword, strconv.Itoa(n))
	}
	return nil
}

// commandKeyword is parse_command: the rest of the line verbatim, quotes
// and comments included. ProxyCommand shares its slot with ProxyJump.
func commandKeyword(r *resolver, c *call) error {
	c.args = nil
	cmd := strings.TrimLeft(c.rest, " \t\r\n=")
	if !c.active {
		return nil
	}
	// A ProxyJump other than "none" takes the slot; ssh 9.2 still
	// takes a ProxyCommand after "ProxyJump none".
	if c.keyword == "proxycommand" && r.cfg.jump != nil && !r.cfg.jump.none {
		return nil
	}
	r.cfg.setStr(c.keyword, cmd)
	return nil
}

func proxyJumpKeyword(r *resolver, c *call) error {
	c.args = nil
	spec := strings.TrimLeft(c.rest, " \t\r\n=")
	j, err := parseJump(spec)
	if err != nil {
		return fmt.Errorf("invalid ProxyJump %q: %w", spec, err)
	}
	if _, taken := r.cfg.str["proxycommand"]; !c.active || taken || r.cfg.jump != nil {
		return nil
	}
	r.cfg.jump = j
	r.cfg.explicit["proxyjump"] = true
	return nil
}

// setEnvKeyword: the first line that sets anything sets the whole list;
// within it a repeated name keeps its first value.
func setEnvKeyword(r *resolver, c *call) error {
	unset := len(r.cfg.setEnv) == 0
	seen := map[string]bool{}
	for _, a := range c.args {
		if !strings.Contains(a, "=") {
			return errors.New("invalid SetEnv")
		}
		if !c.active || !unset {
			continue
		}
		name, _, _ := strings.Cut(a, "=")
		if !seen[name] {
			seen[name] = true
			r.cfg.setEnv = append(r.cfg.setEnv, a)
			r.cfg.explicit["setenv"] = true
		}
	}
	c.args = nil
	return nil
}

// maxSendEnv bounds SendEnv, which ssh does not: removing names with
// "-pattern" costs names times patterns.
const maxSendEnv = 1024

// sendEnvKeyword accumulates over every line; "-pattern" removes names
// sent so far.
func sendEnvKeyword(r *resolver, c *call) error {
	for _, a := range c.args {
		if a == "" || strings.Contains(a, "=") {
			return errors.New("invalid environment name")
		}
		if !c.active {
			continue
		}
		r.cfg.explicit["sendenv"] = true
		if strings.HasPrefix(a, "-") {
			kept := r.cfg.sendEnv[:0]
			for _, e := range r.cfg.sendEnv {
				if !MatchPattern(e, a[1:]) {
					kept = append(kept, e)
				}
			}
			r.cfg.sendEnv = kept
			continue
		}
		if len(r.cfg.sendEnv) >= maxSendEnv {
			return fmt.Errorf("more than %d SendEnv names", maxSendEnv)
		}
		r.cfg.sendEnv = append(r.cfg.sendEnv, a)
	}
	c.args = nil
	return nil
}

// logLevels are log.c's names; ssh prints the first name of a level.
var logLevels = []struct{ name, canonical string }{
	{"SILENT", "SILENT"}, {"QUIET", "SILENT"}, {"FATAL", "FATAL"}, {"ERROR", "ERROR"},
	{"INFO", "INFO"}, {"VERBOSE", "VERBOSE"}, {"DEBUG", "DEBUG"},
	{"DEBUG1", "DEBUG"}, {"DEBUG2", "DEBUG2"}, {"DEBUG3", "DEBUG3"},
}

func logLevelKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	for _, l := range logLevels {
		if strings.EqualFold(a, l.name) {
			if c.active {
				r.cfg.setStr(c.keyword, l.canonical)
			}
			return nil
		}
	}
	return fmt.Errorf("unsupported log level %q", a)
}

// addressFamilyKeyword is multistate_addressfamily.
func addressFamilyKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	switch v := lower(a); v {
	case "inet", "inet6", "any":
		if c.active {
			r.cfg.setStr(c.keyword, v)
		}
		return nil
	}
	return fmt.Errorf("unsupported option %q", a)
}

// pubkeyValues maps what multistate_pubkey_auth accepts to the name ssh -G
// prints for it.
var pubkeyValues = map[string]string{
	"true": "true", "yes": "true",
	"false": "false", "no": "false",
	"unbound": "unbound", "host-bound": "host-bound",
}

func pubkeyKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	v, ok := pubkeyValues[lower(a)]
	if !ok {
		return fmt.Errorf("unsupported option %q", a)
	}
	if c.active {
		r.cfg.setStr("pubkeyauthentication", v) // also DSAAuthentication
	}
	return nil
}

// flagAs is flagKeyword for a keyword that has aliases: the value is kept
// under the one name whatever the line called it.
func flagAs(name string) handler {
	return func(r *resolver, c *call) error {
		a, _ := c.next()
		v, ok := parseFlag(a)
		if !ok {
			return fmt.Errorf("unsupported option %q", a)
		}
		if c.active {
			r.cfg.setStr(name, v)
		}
		return nil
	}
}

// keywordAliases are ssh's other names for a keyword.
var keywordAliases = map[string]string{
	"identityfile2":                   "identityfile",
	"hostbasedkeytypes":               "hostbasedacceptedalgorithms",
	"pubkeyacceptedkeytypes":          "pubkeyacceptedalgorithms",
	"dsaauthentication":               "pubkeyauthentication",
	"challengeresponseauthentication": "kbdinteractiveauthentication",
	"skeyauthentication":              "kbdinteractiveauthentication",
	"tisauthentication":               "kbdinteractiveauthentication",
	"smartcarddevice":                 "pkcs11provider",
}

// notHonoured are OpenSSH keywords that change how or where ssh connects
// but that m2m-ssh does not act on; an active line is warned about.
var notHonoured = map[string]string{
	"pkcs11provider":      "keys come from files and the agent only",
	"securitykeyprovider": "",
	"localcommand":        "",
	"permitlocalcommand":  "",
}

// ignoredKeywords are the rest of OpenSSH 9's keywords: valid, but about
// terminals, forwarding and other things a JSON-RPC bridge
// has no use for. They are accepted without a word.
var ignoredKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`
		forwardx11 forwardx11trusted forwardx11timeout exitonforwardfailure
		xauthlocation gatewayports kbdinteractivedevices
		hostbasedauthentication
		addkeystoagent remoteforward
		localforward dynamicforward permitremoteopen escapechar
		compression tcpkeepalive keepalive
		syslogfacility logfacility logverbose
		clearallforwardings enablesshkeysign verifyhostkeydns
		nohostauthenticationforlocalhost rekeylimit
		tunnel tunneldevice visualhostkey
		ipqos requesttty sessiontype stdinnull forkafterauthentication
		proxyusefdpass
		streamlocalbindmask streamlocalbindunlink revokedhostkeys
		fingerprinthash updatehostkeys requiredrsasize
		enableescapecommandline gssapiauthentication
		gssapidelegatecredentials gssapikeyexchange gssapitrustdns
		gssapirenewalforcesrekey gssapiclientidentity
		gssapiserveridentity gssapikexalgorithms
		protocol cipher fallbacktorsh globalknownhostsfile2
		rhostsauthentication userknownhostsfile2 useroaming usersh
		useprivilegedport rhostsrsaauthentication rsaauthentication
		compressionlevel afstokenpassing kerberosauthentication
		kerberostgtpassing`) {
		ignoredKeywords[k] = true
	}
}

// noteBlock records a Host or Match line whose block applies, for Trace.
func (r *resolver) noteBlock(c *call, active bool) {
	kw := "Host"
	if c.keyword == "match" {
		kw = "Match"
	}
	b := fmt.Sprintf("%s:%d: %s %s", c.file, c.num, kw, c.rest)
	if active && !slices.Contains(r.blocks, b) {
		r.blocks = append(r.blocks, b)
	}
}
