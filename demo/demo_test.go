package demo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/crypto/ssh"
)

// The demo's config file leads m2m-ssh's own resolution, authentication
// and host key check to the server, and the MCP server answers there.
func TestDemoThroughTheBridgePath(t *testing.T) {
	h, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tg, err := sshcfg.Resolve(Alias, sshcfg.Options{ConfigFile: h.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Addr() != h.Addr || tg.User != User || tg.StrictHostKeyChecking != "yes" {
		t.Fatalf("resolved %s as %s, want %s as %s with strict host key checking", tg.Addr(), tg.User, h.Addr, User)
	}
	ids, err := agentauth.LoadIdentities(tg, agentauth.IdentityOptions{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()
	hk, err := agentauth.NewHostKeyChecker(tg, agentauth.HostKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := hk.Trusted(h.HostKey); !ok || k.Fingerprint != ssh.FingerprintSHA256(h.HostKey) {
		t.Fatalf("the demo's known_hosts does not trust its host key: %v %v", k, ok)
	}
	remote, err := transport.SSH(&transport.Dialer{Target: tg, Identities: ids, HostKeys: hk}, transport.Program{})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()

	client := mcp.NewClient(&mcp.Implementation{Name: "demo-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: readCloser{remote}, Writer: writeCloser{remote}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != Name {
		t.Errorf("server name %q, want %q", got, Name)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "é ✓"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != "é ✓" {
		t.Errorf("echo = %q", got)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "time", Arguments: map[string]any{"zone": "UTC"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, res.Content[0].(*mcp.TextContent).Text); err != nil {
		t.Errorf("time: %v", err)
	}
	// Closing the host's side ends the server with status 0.
	remote.CloseWrite()
	if err := remote.Wait(); err != nil {
		t.Errorf("remote ended with %v, want status 0", err)
	}
}

// Only the demo's own client key gets in.
func TestDemoRefusesOtherKeys(t *testing.T) {
	h, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ssh.Dial("tcp", h.Addr, &ssh.ClientConfig{
		User:            User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(other)},
		HostKeyCallback: ssh.FixedHostKey(h.HostKey),
		Timeout:         10 * time.Second,
	})
	if err == nil {
		t.Fatal("logged in with a key the demo did not make")
	}
	// Its files, client key included, go with it.
	h.Close()
	if _, err := os.Stat(h.ConfigFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, %s: %v", h.ConfigFile, err)
	}
}

type readCloser struct{ transport.Remote }

func (r readCloser) Close() error { return r.Remote.Close() }

type writeCloser struct{ transport.Remote }

func (w writeCloser) Close() error { return w.Remote.CloseWrite() }
