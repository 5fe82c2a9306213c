package sshtest

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Agent is a running ssh-agent.
type Agent struct {
	Sock string
	cmd  *exec.Cmd
}

// StartAgent starts ssh-agent on a socket in a fresh directory and stops it
// when the test ends.
func StartAgent(t testing.TB) *Agent {
	t.Helper()
	bin := LookPath(t, "ssh-agent")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// In the foreground (-D) ssh-agent prints its environment lines once
	// the socket is bound.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "SSH_AUTH_SOCK") {
		t.Fatalf("ssh-agent did not start: %q %v", line, err)
	}
	return &Agent{Sock: sock, cmd: cmd}
}

// Stop kills the agent, as a user's agent that is restarted or gone:
// its socket stays, and nothing listens on it.
func (a *Agent) Stop() {
	a.cmd.Process.Kill()
	a.cmd.Wait()
}

// Add loads a private key into the agent with ssh-add.
func (a *Agent) Add(t testing.TB, keyPath string) {
	t.Helper()
	bin := LookPath(t, "ssh-add")
	cmd := exec.Command(bin, keyPath)
	cmd.Env = []string{"SSH_AUTH_SOCK=" + a.Sock, "PATH=/usr/bin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v\n%s", keyPath, err, out)
	}
}
