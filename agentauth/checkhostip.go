package agentauth

import (
	"net"
	"strconv"

	"golang.org/x/crypto/ssh"
)

// CheckHostIP, as ssh's check_host_key does it: besides the host's name,
// the address the connection reached is looked up in known_hosts. A key
// known for the name and new for the address gets the address recorded;
// a different key known for the address refuses the connection unless
// StrictHostKeyChecking is off. It is off by default (OpenSSH 8.5 on).

// ipStatus is what known_hosts says of the key for the server's address.
type ipStatus int

const (
	ipNew     ipStatus = iota // no line for the address has a key of this type
	ipOK                      // a line for the address has this key
	ipChanged                 // a line for the address has another key of this type
)

func (s ipStatus) String() string {
	switch s {
	case ipOK:
		return "is unchanged"
	case ipChanged:
		return "has a different value"
	}
	return "is unknown"
}

// ipResult is the address check's finding: its status and the line that
// holds another key.
type ipResult struct {
	status ipStatus
	other  *knownLine
}

// hostIP is the known_hosts name of the address the server was reached
// at ("ip" or "[ip]:port"), or "" when ssh would not check it: CheckHostIP
// off, a connection through a proxy or jump host, a loopback address, a
// HostName that already is the address, or a certificate.
func (c *HostKeyChecker) hostIP(remote net.Addr, key ssh.PublicKey) string {
	t := c.t
	if !t.CheckHostIP || t.ProxyCommand != "" || t.ProxyJump != "" {
		return ""
	}
	if _, isCert := key.(*ssh.Certificate); isCert {
		return ""
	}
	ta, ok := remote.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsLoopback() {
		return ""
	}
	ip := ta.IP.String()
	if t.Port != 0 && t.Port != 22 {
		ip = "[" + ip + "]:" + strconv.Itoa(t.Port)
	}
	if t.HostName == ip {
		return ""
	}
	return ip
}

// addressCheck looks key up under ip, in the files and in what
// KnownHostsCommand printed for the address.
func (c *HostKeyChecker) addressCheck(key ssh.PublicKey, ip string, extra []*knownLine) ipResult {
	if ip == "" {
		return ipResult{status: ipOK}
	}
	c.mu.Lock()
	lines := append(cloneLines(c.db.lines), extra...)
	c.mu.Unlock()
	res := ipResult{status: ipNew}
	for _, l := range lines {
		if l.marker != "" || !l.matches(ip) {
			continue
		}
		if keysEqual(l.key, key) {
			return ipResult{status: ipOK}
		}
		if l.key.Type() == key.Type() && res.other == nil {
			res = ipResult{status: ipChanged, other: l}
		}
	}
	return res
}

// hostKnown finishes a check whose key known_hosts trusts for the host:
// the address is recorded when new, and a different key for it refuses
// the connection unless StrictHostKeyChecking is off.
func (c *HostKeyChecker) hostKnown(key ssh.PublicKey, ip string, res ipResult) error {
	if ip == "" {
		return nil
	}
	switch res.status {
	case ipNew:
		if c.foundByCommand(key) || len(c.t.UserKnownHostsFiles) == 0 {
			c.log.Info("host key for the IP address not in the list of known hosts", "type", key.Type(), "address", ip)
			return nil
		}
		if err := c.learn(key, ip); err != nil {
			c.log.Warn("failed to add the host key for the IP address to the list of known hosts", "address", ip, "err", err)
		} else {
			c.log.Info("permanently added the host key for the IP address to the list of known hosts",
				"type", key.Type(), "address", ip, "file", c.userFile())
		}
	case ipChanged:
		herr := c.addressChanged(key, ip, res)
		if c.policy == "no" {
			c.log.Warn(herr.Error(), "host", c.name)
			return nil
		}
		return herr
	}
	return nil
}

// addressChanged is the error of an address known_hosts holds another
// key for.
func (c *HostKeyChecker) addressChanged(key ssh.PublicKey, ip string, res ipResult) *HostKeyError {
	return &HostKeyError{Problem: HostIPKeyChanged, Alias: c.t.Alias, Name: c.name, Address: ip,
		Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Known: []KnownKey{res.other.known()}, KnownHostsFile: c.userFile()}
}

// foundByCommand reports whether only KnownHostsCommand vouches for key:
// ssh then writes nothing to known_hosts.
func (c *HostKeyChecker) foundByCommand(key ssh.PublicKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.db.lines {
		if l.marker == "" && keysEqual(l.key, key) && l.matches(c.name) {
			return false
		}
	}
	return len(c.cmdLines) > 0
}
