package sshcfg

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// strictShown is how ssh -G prints StrictHostKeyChecking: the first name
// readconf.c has for each value.
var strictShown = map[string]string{
	"yes": "true", "no": "false", "ask": "ask", "accept-new": "accept-new",
}

// canonicalShown is how ssh -G prints CanonicalizeHostname.
var canonicalShown = map[string]string{"no": "false", "yes": "true", "always": "always"}

func noneIfEmpty(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}

// WriteConfig prints the resolved settings as ssh -G does for the keywords
// sshcfg resolves: lowercase keyword, a space, the value, one line per
// value, OpenSSH's defaults included and in ssh's order. Paths ssh -G
// shows unexpanded (IdentityFile, CertificateFile, GlobalKnownHostsFile)
// are printed as written.
func (t *Target) WriteConfig(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(kw, v string) {
		b.WriteString(kw + " " + v + "\n")
	}
	yesno := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	p("user", t.User)
	p("hostname", t.HostName)
	p("port", strconv.Itoa(t.Port))
	p("addressfamily", t.AddressFamily)
	p("batchmode", yesno(t.BatchMode))
	p("canonicalizefallbacklocal", yesno(t.CanonicalizeFallbackLocal))
	p("canonicalizehostname", canonicalShown[t.CanonicalizeHostname])
	p("controlmaster", t.ControlMaster.String())
	p("hashknownhosts", yesno(t.HashKnownHosts))
	p("identitiesonly", yesno(t.IdentitiesOnly))
	p("stricthostkeychecking", strictShown[t.StrictHostKeyChecking])
	p("serveralivecountmax", strconv.Itoa(t.ServerAliveCountMax))
	p("canonicalizemaxdots", strconv.Itoa(t.CanonicalizeMaxDots))
	p("connectionattempts", strconv.Itoa(t.ConnectionAttempts))
	p("serveraliveinterval", strconv.Itoa(int(t.ServerAliveInterval.Seconds())))
	if t.BindAddress != "" {
		p("bindaddress", t.BindAddress)
	}
	if t.BindInterface != "" {
		p("bindinterface", t.BindInterface)
	}
	p("ciphers", t.Ciphers)
	if t.ControlPath != "" {
		p("controlpath", t.ControlPath)
	}
	p("hostkeyalgorithms", t.HostKeyAlgorithms)
	if t.HostKeyAlias != "" {
		p("hostkeyalias", t.HostKeyAlias)
	}
	p("hostbasedacceptedalgorithms", t.HostbasedAcceptedAlgorithms)
	if t.Set("identityagent") {
		p("identityagent", t.shown.identityAgent)
	}
	if t.RemoteCommand != "" {
		p("remotecommand", t.RemoteCommand)
	}
	p("kexalgorithms", t.KexAlgorithms)
	p("casignaturealgorithms", t.CASignatureAlgorithms)
	p("loglevel", t.LogLevel)
	p("macs", t.MACs)
	p("pubkeyacceptedalgorithms", t.PubkeyAcceptedAlgorithms)
	for _, f := range t.shown.identityFiles {
		p("identityfile", f)
	}
	for _, f := range t.shown.certificateFiles {
		p("certificatefile", f)
	}
	p("canonicaldomains", noneIfEmpty(t.CanonicalDomains))
	p("globalknownhostsfile", strings.Join(t.shown.globalKnownHosts, " "))
	p("userknownhostsfile", strings.Join(t.shown.userKnownHosts, " "))
	for _, e := range t.SendEnv {
		p("sendenv", e)
	}
	for _, e := range t.SetEnv {
		p("setenv", e)
	}
	// ssh -G spells this one keyword with capitals.
	p("canonicalizePermittedcnames", noneIfEmpty(t.CanonicalizePermittedCNAMEs))
	switch {
	case t.ForwardAgentSocket != "":
		p("forwardagent", t.ForwardAgentSocket)
	default:
		p("forwardagent", yesno(t.ForwardAgent))
	}
	if t.Set("connecttimeout") {
		p("connecttimeout", strconv.Itoa(int(t.ConnectTimeout.Seconds())))
	} else {
		p("connecttimeout", "none")
	}
	p("controlpersist", t.controlPersistShown())
	switch {
	case t.ProxyJump != "":
		p("proxyjump", t.ProxyJump)
	case t.ProxyCommand != "":
		p("proxycommand", t.ProxyCommand)
	}
	if t.PreferredAuthentications != "" {
		p("preferredauthentications", t.PreferredAuthentications)
	}
	p("pubkeyauthentication", t.pubkeyShown)
	p("passwordauthentication", yesno(t.PasswordAuthentication))
	p("kbdinteractiveauthentication", yesno(t.KbdInteractiveAuthentication))
	p("numberofpasswordprompts", strconv.Itoa(t.NumberOfPasswordPrompts))
	if t.KnownHostsCommand != "" {
		p("knownhostscommand", t.KnownHostsCommand)
	}
	p("checkhostip", yesno(t.CheckHostIP))
	return b.Flush()
}
