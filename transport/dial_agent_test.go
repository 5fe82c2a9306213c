package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// mutedAgentServer is an SSH server on 127.0.0.1 that lets anyone in,
// runs every exec as a program printing "ran", and never answers a
// request for agent forwarding: a broken or hostile server. agentReqs
// gets each such request's want-reply flag.
func mutedAgentServer(t *testing.T) (addr string, hostKey ssh.PublicKey, agentReqs <-chan bool) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sc := &ssh.ServerConfig{NoClientAuth: true}
	sc.AddHostKey(signer)
	reqs := make(chan bool, 16)
	addr = sshtest.Serve(t, "tcp", "127.0.0.1:0", func(c net.Conn) { serveMutedAgent(c, sc, reqs) })
	return addr, signer.PublicKey(), reqs
}

func serveMutedAgent(c net.Conn, sc *ssh.ServerConfig, agentReqs chan<- bool) {
	_, chans, global, err := ssh.NewServerConn(c, sc)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(global)
	for nc := range chans {
		ch, reqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer ch.Close()
			for r := range reqs {
				switch r.Type {
				case "auth-agent-req@openssh.com":
					select {
					case agentReqs <- r.WantReply:
					default:
					}
					// Never answered.
				case "exec":
					r.Reply(true, nil)
					io.WriteString(ch, "ran\n")
					ch.CloseWrite()
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
					return
				default:
					if r.WantReply {
						r.Reply(false, nil)
					}
				}
			}
		}()
	}
}

// A server that never answers the request for agent forwarding cannot
// hold the session: the request wants no reply, as ssh sends it (which
// also spares a round trip), and the program starts.
func TestForwardAgentUnanswered(t *testing.T) {
	addr, hostKey, agentReqs := mutedAgentServer(t)
	host, p, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	kh := sshtest.WriteFile(t, dir, "known_hosts", fmt.Sprintf("[%s]:%s %s", host, p, ssh.MarshalAuthorizedKey(hostKey)))
	agent := sshtest.StartAgent(t)
	key := sshtest.Keygen(t, dir, "id_ed25519", sshtest.KeyOptions{})
	agent.Add(t, key.Path)
	log := &sshtest.Buffer{}
	d := testDialer(t, "muted", sshcfg.Options{ConfigFile: "none", Home: dir,
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Options: []string{"HostName=" + host, "Port=" + p, "User=someone", "UserKnownHostsFile=" + kh,
			"StrictHostKeyChecking=yes", "BatchMode=yes", "IdentityAgent=" + agent.Sock, "ForwardAgent=yes"}}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), testBound)
	defer cancel()
	out := sshtest.Within(t, testBound, func() string {
		r, err := SSH(d, Program{Command: "x"})(ctx)
		if err != nil {
			t.Errorf("connect: %v", err)
			return ""
		}
		defer r.Close()
		b, _ := io.ReadAll(r)
		var ee *ExitError
		if err := r.Wait(); err != nil && !errors.As(err, &ee) {
			t.Errorf("wait: %v", err)
		}
		return string(b)
	})
	if out != "ran\n" {
		t.Fatalf("the program printed %q, want %q\nlog:\n%s", out, "ran\n", log)
	}
	select {
	case wantReply := <-agentReqs:
		if wantReply {
			t.Errorf("the agent forwarding request wants a reply; ssh's wants none")
		}
	default:
		t.Fatalf("no agent forwarding request reached the server\nlog:\n%s", log)
	}
}
