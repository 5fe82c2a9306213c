package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/ssh"
)

// Alias is the host name the demo's ssh config file defines.
const Alias = "m2m-demo"

// User is the user the demo's server lets in.
const User = "demo"

// Host is a running demo server and the files that lead m2m-ssh to it.
type Host struct {
	// ConfigFile is an ssh config file defining Alias: the server's
	// address, the client key, and a known_hosts file trusting the
	// server's key. It is what -F would be given.
	ConfigFile string
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
	// HostKey is the server's public key.
	HostKey ssh.PublicKey

	dir    string
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// Start listens on a free port of 127.0.0.1 and writes the ssh config,
// client key and known_hosts files to a fresh temporary directory, which
// Close removes.
func Start(log *slog.Logger) (h *Host, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("the demo server's host key: %w", err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, fmt.Errorf("the demo server's host key: %w", err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("the demo's client key: %w", err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, fmt.Errorf("the demo's client key: %w", err)
	}

	dir, err := os.MkdirTemp("", "m2m-ssh-demo-")
	if err != nil {
		return nil, fmt.Errorf("cannot start the demo server: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("the demo server cannot listen on 127.0.0.1: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port

	block, err := ssh.MarshalPrivateKey(clientPriv, "m2m-ssh demo client")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("the demo's client key: %w", err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	knownHosts := filepath.Join(dir, "known_hosts")
	config := filepath.Join(dir, "ssh_config")
	files := []struct {
		path string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(block)},
		{knownHosts, fmt.Appendf(nil, "[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))},
		{config, []byte(strings.Join([]string{
			"# Written by m2m-ssh demo; removed when it ends.",
			"Host " + Alias,
			"  HostName 127.0.0.1",
			"  Port " + strconv.Itoa(port),
			"  User " + User,
			"  IdentityFile " + quote(keyFile),
			"  IdentitiesOnly yes",
			"  IdentityAgent none",
			"  UserKnownHostsFile " + quote(knownHosts),
			"  GlobalKnownHostsFile none",
			"  StrictHostKeyChecking yes",
			"",
		}, "\n"))},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			ln.Close()
			return nil, fmt.Errorf("cannot start the demo server: %w", err)
		}
	}

	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-m2m-ssh-demo",
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == User && string(key.Marshal()) == string(authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("the demo server does not know this key")
		},
	}
	cfg.AddHostKey(hostSigner)

	ctx, cancel := context.WithCancel(context.Background())
	h = &Host{
		ConfigFile: config,
		Addr:       ln.Addr().String(),
		HostKey:    hostSigner.PublicKey(),
		dir:        dir,
		ln:         ln,
		log:        log,
		ctx:        ctx,
		cancel:     cancel,
		conns:      map[net.Conn]bool{},
	}
	h.wg.Add(1)
	go h.accept(cfg)
	return h, nil
}

// quote puts a path in double quotes for ssh_config, with forward
// slashes: ssh_config treats backslashes as escapes, and Windows takes
// either separator.
func quote(path string) string {
	return `"` + filepath.ToSlash(path) + `"`
}

// Close stops the server, ends its sessions and removes its files.
func (h *Host) Close() error {
	h.cancel()
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return os.RemoveAll(h.dir)
}

func (h *Host) accept(cfg *ssh.ServerConfig) {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.ctx.Err() != nil {
			h.mu.Unlock()
			c.Close()
			return
		}
		h.conns[c] = true
		h.wg.Add(1)
		h.mu.Unlock()
		go func() {
			defer h.wg.Done()
			h.serve(c, cfg)
			h.mu.Lock()
			delete(h.conns, c)
			h.mu.Unlock()
		}()
	}
}

func (h *Host) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		h.log.Debug("the demo server's handshake failed", "err", err)
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.session(ch, creqs)
		}()
	}
}

// session starts the MCP server on the first shell, exec or subsystem
// request, whatever it names: the demo has only one thing to run.
func (h *Host) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	done := make(chan error, 1)
	started := false
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				return
			}
			switch req.Type {
			case "shell", "exec", "subsystem":
				req.Reply(!started, nil)
				if !started {
					started = true
					go func() { done <- h.runMCP(ch) }()
				}
			default:
				if req.WantReply {
					req.Reply(false, nil)
				}
			}
		case err := <-done:
			status := uint32(0)
			if err != nil {
				h.log.Debug("the demo's MCP server ended", "err", err)
				fmt.Fprintf(ch.Stderr(), "m2m-ssh-demo: %v\n", err)
				status = 1
			}
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
			return
		}
	}
}

// runMCP serves one MCP session on the channel until its input ends.
func (h *Host) runMCP(ch ssh.Channel) error {
	// The server closing its stdin and stdout must not close the
	// channel, which still has the exit status to carry.
	d := &drain{answered: make(chan struct{}, 1)}
	t := &mcp.IOTransport{Reader: io.NopCloser(d.reader(ch)), Writer: nopWriteCloser{d.writer(ch)}}
	err := NewMCPServer().Run(h.ctx, t)
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// drain holds back the end of the server's input until it has answered
// every request it read, or drainWait passed: a host that writes its
// requests and closes stdin at once gets its answers, as from a server
// that reads one line at a time.
type drain struct {
	mu       sync.Mutex
	asked    int
	answered chan struct{} // a token per answer
	answers  int
}

const drainWait = 5 * time.Second

func (d *drain) reader(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		fr := jsonrpc.NewFrameReader(r)
		for {
			frame, err := fr.Next()
			if err != nil {
				d.wait()
				pw.CloseWithError(err)
				return
			}
			if env, err := jsonrpc.ParseEnvelope(frame); err == nil && env.Kind == jsonrpc.KindRequest {
				d.mu.Lock()
				d.asked++
				d.mu.Unlock()
			}
			if _, err := pw.Write(frame); err != nil {
				return
			}
		}
	}()
	return pr
}

func (d *drain) writer(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		n, err := w.Write(p)
		if env, perr := jsonrpc.ParseEnvelope(p); perr == nil && env.Kind == jsonrpc.KindResponse {
			d.mu.Lock()
			d.answers++
			d.mu.Unlock()
			select {
			case d.answered <- struct{}{}:
			default:
			}
		}
		return n, err
	})
}

// wait returns once every request read has been answered, or after
// drainWait.
func (d *drain) wait() {
	timer := time.NewTimer(drainWait)
	defer timer.Stop()
	for {
		d.mu.Lock()
		done := d.answers >= d.asked
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-d.answered:
		case <-timer.C:
			return
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
