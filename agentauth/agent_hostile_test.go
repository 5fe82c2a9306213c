//go:build unix

package agentauth

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// silentAgent is a socket that accepts connections and never answers,
// as a stuck agent, or a socket some other program listens on, does.
func silentAgent(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "m2m-agent") // a socket's path must fit in 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Each connection is held, unanswered, until the test ends.
	held := make(chan struct{})
	t.Cleanup(func() { close(held) })
	return sshtest.Serve(t, "unix", filepath.Join(dir, "agent.sock"), func(net.Conn) { <-held })
}

// An agent that never answers the list of its keys cannot hold the
// connect: it is given up after a bound, said so at WARN, and the key
// files are still offered.
func TestSilentAgent(t *testing.T) {
	dir := t.TempDir()
	priv, pub := newEd25519(t)
	key := filepath.Join(dir, "id")
	writeKey(t, key, priv)
	tgt := &sshcfg.Target{User: "u", Alias: "box", IdentityAgent: silentAgent(t), ForwardAgent: true, IdentityFiles: []string{key}}
	log, buf := newLog()
	const wait = 200 * time.Millisecond
	ids := sshtest.Within(t, noBlock, func() *Identities {
		ids, err := LoadIdentities(tgt, IdentityOptions{Logger: log, Getenv: mapEnv(nil), agentTimeout: wait})
		if err != nil {
			t.Error(err)
		}
		return ids
	})
	if ids == nil {
		t.Fatalf("no identities:\n%s", buf)
	}
	defer ids.Close()
	if got := ids.Signers(); len(got) != 1 || !keysEqual(got[0].PublicKey(), pub) {
		t.Fatalf("offered %v, want the key file's", ids.Offered())
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "did not answer within "+wait.String()) {
		t.Errorf("no warning that the agent did not answer:\n%s", out)
	}
	// Not an agent to forward either.
	if s := ids.AgentSocket(); s != "" {
		t.Errorf("AgentSocket is %q after the agent did not answer; want none", s)
	}
}
