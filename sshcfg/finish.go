package sshcfg

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// target fills in OpenSSH's defaults and expands what ssh expands.
func (r *resolver) target(hostname string) (*Target, error) {
	c := &r.cfg
	t := &Target{
		Alias:                 r.alias,
		HostName:              hostname,
		Port:                  defaultPort,
		User:                  r.localUser,
		StrictHostKeyChecking: defaultStrictHostKeyChecking,
		ServerAliveCountMax:   defaultServerAliveCountMax,
		LogLevel:              defaultLogLevel,
		AddressFamily:         "any",
		ConnectionAttempts:    1,
		BindAddress:           c.str["bindaddress"],
		BindInterface:         c.str["bindinterface"],
		SetEnv:                c.setEnv,
		SendEnv:               c.sendEnv,
		ProxyJump:             c.jump.String(),
		explicit:              c.explicit,
		trace:                 Trace{Files: r.files, Blocks: r.blocks, UserFile: r.userFile()},
	}
	str := c.str
	if v, ok := str["user"]; ok {
		t.User = v
	}
	if v, ok := str["port"]; ok {
		t.Port, _ = strconv.Atoi(v)
	}
	t.IdentitiesOnly = str["identitiesonly"] == "yes"
	t.BatchMode = str["batchmode"] == "yes"
	t.HashKnownHosts = str["hashknownhosts"] == "yes"
	t.ForwardAgent = str["forwardagent"] == "yes"
	if v, ok := str["stricthostkeychecking"]; ok {
		t.StrictHostKeyChecking = v
	}
	if v, ok := str["loglevel"]; ok {
		t.LogLevel = v
	}
	if v, ok := str["serveralivecountmax"]; ok {
		t.ServerAliveCountMax, _ = strconv.Atoi(v)
	}
	if v, ok := str["serveraliveinterval"]; ok {
		n, _ := strconv.Atoi(v)
		t.ServerAliveInterval = time.Duration(n) * time.Second
	} else if t.BatchMode {
		// ssh's own default: batch sessions notice a dead server.
		t.ServerAliveInterval = batchServerAliveInterval
	}
	t.CanonicalizeHostname = str["canonicalizehostname"]
	t.CanonicalizeMaxDots, _ = strconv.Atoi(str["canonicalizemaxdots"])
	t.CanonicalizeFallbackLocal = str["canonicalizefallbacklocal"] == "yes"
	t.CanonicalDomains = c.canonicalDomains
	for _, p := range c.permittedCNAMEs {
		if !r.hasPermittedCNAMEs() {
			break // "none", which ssh -G shows as no rules
		}
		t.CanonicalizePermittedCNAMEs = append(t.CanonicalizePermittedCNAMEs, p.source+":"+p.target)
	}
	if v, ok := str["addressfamily"]; ok {
		t.AddressFamily = v
	}
	if v, ok := str["connectionattempts"]; ok {
		t.ConnectionAttempts, _ = strconv.Atoi(v)
		if t.ConnectionAttempts <= 0 {
			return nil, fmt.Errorf("invalid number of ConnectionAttempts (%d): it must be at least 1", t.ConnectionAttempts)
		}
	}
	if v, ok := str["connecttimeout"]; ok {
		n, _ := strconv.Atoi(v)
		t.ConnectTimeout = time.Duration(n) * time.Second
	}
	t.HostKeyAlias = lower(str["hostkeyalias"])
	t.specs = map[string]string{}
	for kw, al := range algorithmLists {
		list, err := al.resolve(str[kw])
		if err != nil {
			return nil, err
		}
		t.specs[kw] = str[kw]
		*t.algorithmField(kw) = list
	}
	t.PreferredAuthentications = str["preferredauthentications"]
	t.pubkeyShown = "true"
	if v, ok := str["pubkeyauthentication"]; ok {
		t.pubkeyShown = v
	}
	t.PubkeyAuthentication = t.pubkeyShown != "false"
	t.PasswordAuthentication = str["passwordauthentication"] != "no"
	t.KbdInteractiveAuthentication = str["kbdinteractiveauthentication"] != "no"
	t.NumberOfPasswordPrompts = defaultNumberOfPasswordPrompts
	if v, ok := str["numberofpasswordprompts"]; ok {
		t.NumberOfPasswordPrompts, _ = strconv.Atoi(v)
	}
	if v := str["knownhostscommand"]; lower(v) != "none" {
		t.KnownHostsCommand = v
	}
	t.CheckHostIP = str["checkhostip"] == "yes"
	if v := str["proxycommand"]; lower(v) != "none" {
		t.ProxyCommand = v
	}

	// %k is HostKeyAlias, else the alias as given (ssh's host_arg), not
	// the HostName.
	keyAlias := r.alias
	if t.HostKeyAlias != "" {
		keyAlias = t.HostKeyAlias
	}
	jumpHost := ""
	if c.jump != nil && !c.jump.none {
		jumpHost = c.jump.host
	}
	tok := r.connTokens(hostname, strconv.Itoa(t.Port), t.User, keyAlias, jumpHost)
	t.connTokens, t.getenv = tok, r.getenv

	var err error
	if v := str["remotecommand"]; v != "" && lower(v) != "none" {
		if t.RemoteCommand, err = tok.expand(v, false, nil); err != nil {
			return nil, fmt.Errorf("RemoteCommand: %w", err)
		}
	}
	if v, ok := str["identityagent"]; ok {
		if t.shown.identityAgent, err = r.expandPath(v, tok); err != nil {
			return nil, fmt.Errorf("IdentityAgent: %w", err)
		}
		t.IdentityAgent = r.agentSocket(t.shown.identityAgent)
	}
	if v, ok := str["forwardagent-socket"]; ok {
		if t.ForwardAgentSocket, err = r.expandPath(v, tok); err != nil {
			return nil, fmt.Errorf("ForwardAgent: %w", err)
		}
	}

	if v := str["controlpath"]; v != "" && lower(v) != "none" {
		p, err := tildeExpand(v, r.home)
		if err == nil {
			p, err = tok.only(controlPathTokens).expand(p, true, r.getenv)
		}
		if err != nil {
			return nil, fmt.Errorf("ControlPath: %w", err)
		}
		t.ControlPath = p
	}
	if v, ok := str["controlmaster"]; ok {
		n, _ := strconv.Atoi(v)
		t.ControlMaster = ControlMaster(n)
	}
	if v, ok := str["controlpersist"]; ok && v != "no" {
		n, _ := strconv.Atoi(v)
		t.ControlPersist = true
		t.ControlPersistTimeout = time.Duration(n) * time.Second
	}

	ids := c.identityFiles
	if len(ids) == 0 {
		for _, p := range defaultIdentityFiles {
			ids = append(ids, pathArg{path: p})
		}
	}
	for _, id := range ids {
		t.shown.identityFiles = append(t.shown.identityFiles, id.path)
		p, err := r.expandPath(id.path, tok)
		if err != nil {
			return nil, fmt.Errorf("IdentityFile: %w", err)
		}
		t.IdentityFiles = append(t.IdentityFiles, p)
	}
	for _, cf := range c.certificateFiles {
		t.shown.certificateFiles = append(t.shown.certificateFiles, cf.path)
		p, err := r.expandPath(cf.path, tok)
		if err != nil {
			return nil, fmt.Errorf("CertificateFile: %w", err)
		}
		t.CertificateFiles = append(t.CertificateFiles, p)
	}

	userKH := c.userKnownHosts
	if userKH == nil {
		userKH = defaultUserKnownHosts
	}
	for _, f := range userKH {
		p, err := r.expandPath(f, tok)
		if err != nil {
			return nil, fmt.Errorf("UserKnownHostsFile: %w", err)
		}
		t.shown.userKnownHosts = append(t.shown.userKnownHosts, p)
		if lower(f) != "none" {
			t.UserKnownHostsFiles = append(t.UserKnownHostsFiles, p)
		}
	}
	t.shown.globalKnownHosts = c.globalKnownHosts
	if t.shown.globalKnownHosts == nil {
		t.shown.globalKnownHosts = defaultGlobalKnownHosts
	}
	for _, f := range t.shown.globalKnownHosts {
		// ssh -G shows these as written; ~ is expanded for use.
		if lower(f) == "none" {
			continue
		}
		p, err := tildeExpand(f, r.home)
		if err != nil {
			return nil, fmt.Errorf("GlobalKnownHostsFile: %w", err)
		}
		t.GlobalKnownHostsFiles = append(t.GlobalKnownHostsFiles, p)
	}
	return t, nil
}

// agentSocket turns IdentityAgent as ssh shows it into the Target's form:
// "" for SSH_AUTH_SOCK, an environment variable read now, or a path.
func (r *resolver) agentSocket(v string) string {
	name, isVar := strings.CutPrefix(v, "$")
	switch {
	case v == "SSH_AUTH_SOCK" || (isVar && name == "SSH_AUTH_SOCK"):
		return ""
	case isVar:
		if s, ok := r.getenv(name); ok && s != "" {
			return s
		}
		return "none" // ssh finds no agent when the variable is unset
	}
	return v
}

// algorithmField is the Target field that holds an algorithm keyword.
func (t *Target) algorithmField(keyword string) *string {
	switch keyword {
	case "ciphers":
		return &t.Ciphers
	case "macs":
		return &t.MACs
	case "kexalgorithms":
		return &t.KexAlgorithms
	case "hostkeyalgorithms":
		return &t.HostKeyAlgorithms
	case "pubkeyacceptedalgorithms":
		return &t.PubkeyAcceptedAlgorithms
	case "hostbasedacceptedalgorithms":
		return &t.HostbasedAcceptedAlgorithms
	case "casignaturealgorithms":
		return &t.CASignatureAlgorithms
	}
	panic("no field for " + keyword)
}
