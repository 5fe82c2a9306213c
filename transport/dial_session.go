package transport

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// prepare makes the requests ssh makes on a session channel before its
// program starts: agent forwarding when ForwardAgent asks for it, then the
// variables SendEnv names and SetEnv sets, SetEnv last so that it wins.
// Neither is fatal: a server that refuses agent forwarding is logged
// (sshd does not say which variables it refused), and the program starts
// without.
func (d *Dialer) prepare(c *ssh.Client, ch ssh.Channel) {
	if forward := d.AgentForwarder(c); forward != nil {
		forward(ch)
	}
	log := d.logger()
	// As ssh does, env requests want no reply: waiting for each would
	// cost a round trip per variable, and a refused one changes nothing.
	for _, kv := range d.environment() {
		name, value, _ := strings.Cut(kv, "=")
		// Values may be secrets: only names are logged.
		log.Debug("sending an environment variable; sshd's AcceptEnv decides whether the program sees it", "target", d.Target.Alias, "name", name)
		if _, err := ch.SendRequest("env", false, ssh.Marshal(struct{ Name, Value string }{name, value})); err != nil {
			return
		}
	}
}

// AgentForwarder readies c, a connection Dial made, to carry the agent
// ForwardAgent names to the remote, and returns what asks for it on one
// of c's session channels; nil when nothing is to be forwarded (it says
// why at WARN when ForwardAgent asked). Call it once per connection: a
// master calls the function it returns for each session that wants the
// agent, as OpenSSH's master does when its own ForwardAgent is on.
//
// The request wants no reply, as ssh sends it: waiting for one would
// cost a round trip per session, and a server that never answered would
// hold the session before its program is even asked for. Whether the
// program sees the agent is sshd's to decide (AllowAgentForwarding, the
// key's no-agent-forwarding), as with env requests.
func (d *Dialer) AgentForwarder(c *ssh.Client) func(ch ssh.Channel) {
	t, log := d.Target, d.logger()
	sock := d.forwardedAgent()
	if sock == "" {
		return nil
	}
	// The socket is dialled for each agent channel the server opens,
	// maybe after the process has changed directory (a master does).
	if abs, err := filepath.Abs(sock); err == nil {
		sock = abs
	}
	if err := forwardAgent(c, sock, log); err != nil {
		log.Warn("ForwardAgent: cannot reach the agent; not forwarding it", "socket", sock, "err", err)
		return nil
	}
	return func(ch ssh.Channel) {
		if _, err := ch.SendRequest("auth-agent-req@openssh.com", false, nil); err == nil {
			log.Debug("asked for agent forwarding; sshd's AllowAgentForwarding decides whether the program gets it", "target", t.Alias)
		}
	}
}

// wantsAgent says whether ForwardAgent asks for the agent: what a session
// through a master asks it for (the master forwards its own).
func wantsAgent(t *sshcfg.Target) bool { return t.ForwardAgent || t.ForwardAgentSocket != "" }

// forwardedAgent is the agent socket to forward, "" for none: the one
// ForwardAgent names, else the agent the identities came from (ssh
// forwards IdentityAgent's socket too).
func (d *Dialer) forwardedAgent() string {
	t := d.Target
	if sock := t.ForwardAgentSocket; sock != "" {
		if name, ok := strings.CutPrefix(sock, "$"); ok {
			sock = os.Getenv(name)
		}
		if sock == "" {
			d.logger().Warn("ForwardAgent names an unset environment variable; not forwarding the agent", "target", t.Alias, "value", t.ForwardAgentSocket)
		}
		return sock
	}
	if !t.ForwardAgent {
		return ""
	}
	sock := ""
	if d.Identities != nil {
		sock = d.Identities.AgentSocket()
	}
	if sock == "" {
		d.logger().Warn("ForwardAgent is on but no agent is in use; not forwarding one", "target", t.Alias)
	}
	return sock
}

func (d *Dialer) environment() []string { return environment(d.Target, d.logger()) }

// environment is what the env requests carry, as NAME=VALUE: the local
// variables SendEnv's patterns match, less m2m-ssh's own secrets, then
// SetEnv's. A session through a master asks it to send the same.
func environment(t *sshcfg.Target, log *slog.Logger) []string {
	var env, withheld []string
	if len(t.SendEnv) > 0 {
		for _, kv := range os.Environ() {
			name, _, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				continue
			}
			for _, p := range t.SendEnv {
				if !sshcfg.MatchPattern(name, p) {
					continue
				}
				if secretenv.Is(name) {
					// Its value is a secret for m2m-ssh alone.
					withheld = append(withheld, name)
				} else {
					env = append(env, kv)
				}
				break
			}
		}
	}
	if len(withheld) > 0 {
		log.Warn("SendEnv matches variables that carry m2m-ssh's secrets; not sending them", "target", t.Alias, "names", strings.Join(withheld, ","))
	}
	return append(env, t.SetEnv...)
}
