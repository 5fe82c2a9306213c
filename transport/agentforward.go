package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// agentChannel is the channel type a server opens to reach a forwarded
// agent (OpenSSH's PROTOCOL, "auth-agent@openssh.com").
const agentChannel = "auth-agent@openssh.com"

const (
	// maxAgentChannels bounds the agent connections a server may hold
	// open at once: each is a descriptor here, and a remote's tools use
	// one at a time. More are refused, as a resource shortage.
	maxAgentChannels = 64
	// agentDialTimeout bounds reaching the local agent for one channel:
	// the server's program waits on it.
	agentDialTimeout = 10 * time.Second
)

// forwardAgent serves the agent channels the server opens on c, each by a
// connection of its own to the agent at sock. It does what x/crypto's
// agent.ForwardToRemote does, but reaches the agent before it accepts a
// channel, and refuses the channel when it cannot, as ssh does:
// ForwardToRemote accepts first and, when the agent cannot be reached
// (it was restarted, its socket removed), leaves the channel open for
// ever, and the remote's ssh-add or git hangs. The socket is tried once
// now, so that an agent that is not there is reported at once.
func forwardAgent(c *ssh.Client, sock string, log *slog.Logger) error {
	conn, err := net.DialTimeout("unix", sock, agentDialTimeout)
	if err != nil {
		return err
	}
	conn.Close()
	chans := c.HandleChannelOpen(agentChannel)
	if chans == nil {
		return errors.New("the connection already forwards an agent")
	}
	// The first refusal is a warning; later ones, which a server could
	// ask for without end, are debug lines.
	var warned atomic.Bool
	go func() {
		slots := make(chan struct{}, maxAgentChannels)
		for nc := range chans {
			select {
			case slots <- struct{}{}:
			default:
				nc.Reject(ssh.ResourceShortage, "too many agent connections at once")
				continue
			}
			go func() {
				defer func() { <-slots }()
				serveAgentChannel(nc, sock, log, &warned)
			}()
		}
	}()
	return nil
}

// serveAgentChannel connects one agent channel to the agent at sock, or
// refuses it.
func serveAgentChannel(nc ssh.NewChannel, sock string, log *slog.Logger, warned *atomic.Bool) {
	conn, err := net.DialTimeout("unix", sock, agentDialTimeout)
	if err != nil {
		level := slog.LevelWarn
		if warned.Swap(true) {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "the server asked for the forwarded agent, which cannot be reached; refused", "socket", sock, "err", err)
		nc.Reject(ssh.ConnectionFailed, "the forwarded agent cannot be reached")
		return
	}
	defer conn.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	go io.Copy(io.Discard, ch.Stderr()) // the agent protocol has none
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(conn, ch)
		conn.(*net.UnixConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(ch, conn)
		ch.CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
}
