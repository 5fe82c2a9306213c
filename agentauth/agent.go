package agentauth

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// agentDialTimeout bounds the connect to an agent socket: a stale socket
// file must not stall start-up.
const agentDialTimeout = 2 * time.Second

// agentListTimeout bounds the agent's answer to the list of its keys: a
// local agent answers at once, a forwarded one within a round trip; one
// that asks a person does so to sign, not to list.
const agentListTimeout = 10 * time.Second

// windowsAgentPipe is the named pipe of Windows' OpenSSH agent.
const windowsAgentPipe = `\\.\pipe\openssh-ssh-agent`

// launchdGlob is where macOS's launchd keeps the per-user agent socket.
var launchdGlob = "/private/tmp/com.apple.launchd.*/Listeners"

// agentSocket decides which agent socket to use for t: IdentityAgent,
// else SSH_AUTH_SOCK, else one found where the platform keeps it (MCP
// hosts often start servers with a stripped environment). "" means no
// agent. discovered is true when the socket was found by looking.
func agentSocket(t *sshcfg.Target, getenv func(string) string) (sock string, discovered bool) {
	switch v := t.IdentityAgent; {
	case strings.EqualFold(v, "none"):
		return "", false
	case v == "SSH_AUTH_SOCK":
		return getenv("SSH_AUTH_SOCK"), false
	case v != "":
		return expandPath(v, getenv), false
	}
	if s := getenv("SSH_AUTH_SOCK"); s != "" {
		return s, false
	}
	for _, c := range agentCandidates(getenv) {
		if isSocket(c) {
			return c, true
		}
	}
	return "", false
}

// agentCandidates are the well-known agent sockets, most specific first.
func agentCandidates(getenv func(string) string) []string {
	var c []string
	if runtime.GOOS == "windows" {
		// Windows' OpenSSH agent service, which 1Password also serves.
		c = append(c, windowsAgentPipe)
	}
	rt := getenv("XDG_RUNTIME_DIR")
	if rt == "" && runtime.GOOS == "linux" {
		rt = "/run/user/" + strconv.Itoa(os.Getuid())
	}
	if rt != "" {
		c = append(c,
			filepath.Join(rt, "ssh-agent.socket"),         // systemd user unit of ssh-agent
			filepath.Join(rt, "openssh_agent"),            // Fedora's ssh-agent unit
			filepath.Join(rt, "gcr", "ssh"),               // GNOME 46+ gcr-ssh-agent
			filepath.Join(rt, "keyring", "ssh"),           // GNOME keyring
			filepath.Join(rt, "gnupg", "S.gpg-agent.ssh"), // gpg-agent with enable-ssh-support
		)
	}
	if home := homeDir(getenv); home != "" {
		c = append(c,
			filepath.Join(home, ".gnupg", "S.gpg-agent.ssh"),
			filepath.Join(home, ".1password", "agent.sock"),
		)
	}
	if runtime.GOOS == "darwin" {
		if m, _ := filepath.Glob(launchdGlob); len(m) > 0 {
			c = append(c, m...)
		}
	}
	return c
}

// errAgentSilent is an agent that did not answer the list of its keys.
type errAgentSilent struct{ wait time.Duration }

func (e errAgentSilent) Error() string { return fmt.Sprintf("it did not answer within %v", e.wait) }

// listAgent lists the keys of the agent that client speaks to on conn,
// within agentListTimeout (timeout, when set, in tests): an agent that
// accepts and never answers (a stuck one, or another program's socket at
// SSH_AUTH_SOCK) must not hold the connect, which nothing else bounds
// before the dial. Its failure to answer is an errAgentSilent. client
// must be the one client of conn: each reads the connection's answers,
// and a second one would take answers meant for the first.
func listAgent(conn net.Conn, client agent.ExtendedAgent, timeout time.Duration) ([]ssh.Signer, error) {
	if timeout <= 0 {
		timeout = agentListTimeout
	}
	deadline := time.Now().Add(timeout)
	conn.SetDeadline(deadline)
	signers, err := client.Signers()
	if err != nil && !time.Now().Before(deadline) {
		// The agent client's errors do not wrap the timeout.
		return nil, errAgentSilent{timeout}
	}
	conn.SetDeadline(time.Time{})
	return signers, err
}

func dialAgent(sock string) (net.Conn, error) {
	conn, err := dialAgentSocket(sock, agentDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect to ssh-agent at %s: %w", sock, err)
	}
	return conn, nil
}

func homeDir(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// expandPath expands a leading ~ and ${VAR} or $VAR references, as ssh
// does for IdentityAgent.
func expandPath(p string, getenv func(string) string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = homeDir(getenv) + p[1:]
	}
	if strings.Contains(p, "$") {
		p = os.Expand(p, getenv)
	}
	return p
}

func logAgent(log *slog.Logger, sock string, discovered bool) {
	if discovered {
		log.Info("SSH_AUTH_SOCK is not set; using the ssh-agent found at "+sock, "socket", sock)
	} else {
		log.Debug("using ssh-agent", "socket", sock)
	}
}
