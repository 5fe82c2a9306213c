package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/regularfile"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/ssh"
)

// keyServer is --use-key-server: before connecting, the server's host key
// is fetched from m2m-mcp-server-ssh-server's key server and pinned in
// m2m-ssh's own known_hosts file, which is then the only one the
// connection trusts, and the client key is registered with it.
type keyServer struct {
	api     agentauth.KeyServer
	pinFile string
}

// keyServerFlags only mean something with --use-key-server.
var keyServerFlags = []string{"key-server-port", "key-server-https-port", "key-server-ca", "key-server-insecure-http"}

// useKeyServer reads the key server flags into s.
func (s *session) useKeyServer(c *cli.Context) error {
	if !c.Bool("use-key-server") {
		for _, f := range keyServerFlags {
			if c.IsSet(f) {
				return fmt.Errorf("--%s needs --use-key-server", f)
			}
		}
		return nil
	}
	if !s.seed {
		return errors.New("--use-key-server takes --host, not an ALIAS")
	}
	pin, err := pinnedKnownHosts()
	if err != nil {
		return err
	}
	k := &keyServer{pinFile: pin}
	k.api.HTTPPort = c.Int("key-server-port")
	k.api.HTTPSPort = c.Int("key-server-https-port")
	k.api.AllowHTTP = c.Bool("key-server-insecure-http")
	if ca := c.String("key-server-ca"); ca != "" {
		if k.api.RootCAs, err = loadCA(expandHome(ca)); err != nil {
			return err
		}
	}
	// First values win: the pinned file is the connection's only trust.
	s.opts.Options = append([]string{
		fmt.Sprintf("UserKnownHostsFile=%q", pin),
		"GlobalKnownHostsFile=none",
		"StrictHostKeyChecking=yes",
	}, s.opts.Options...)
	s.keyServer = k
	return nil
}

// pinnedKnownHosts is m2m-ssh's own known_hosts file, for host keys
// learnt from key servers.
func pinnedKnownHosts() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("--use-key-server keeps the server keys it learns under the user's config directory: %w", err)
	}
	return filepath.Join(dir, "m2m-ssh", "known_hosts"), nil
}

// maxCAFileSize bounds --key-server-ca: the whole Mozilla root bundle
// is ~250 KiB; a file many times that is not a list of authorities.
const maxCAFileSize = 4 << 20

// loadCA adds the PEM certificates of file to the system's roots.
func loadCA(file string) (*x509.CertPool, error) {
	data, err := regularfile.Read(file, maxCAFileSize)
	if err != nil {
		return nil, fmt.Errorf("--key-server-ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--key-server-ca: no PEM certificate in %s", file)
	}
	return pool, nil
}

// prepare pins the server's key for t and registers the client key.
func (k *keyServer) prepare(ctx context.Context, t *sshcfg.Target, clientKey string, passphrase []byte, logger *slog.Logger) error {
	k.api.Host = t.HostName
	k.api.Logger = logger
	key, err := k.api.ServerKey(ctx)
	if err != nil {
		return err
	}
	added, err := agentauth.PinHostKey(t, k.pinFile, key, k.api.URL())
	if err != nil {
		return err
	}
	if added {
		logger.Info("pinned the server's host key on first use", "key_server", k.api.URL(),
			"type", key.Type(), "fingerprint", ssh.FingerprintSHA256(key), "file", k.pinFile)
	} else {
		logger.Debug("the key server's host key matches the pinned one", "fingerprint", ssh.FingerprintSHA256(key))
	}
	pub, err := agentauth.ClientPublicKey(clientKey, passphrase)
	if err != nil {
		return err
	}
	if err := k.api.Register(ctx, pub); err != nil {
		return err
	}
	logger.Info("registered the client key with the key server", "key_server", k.api.URL(),
		"fingerprint", ssh.FingerprintSHA256(pub), "key", strings.TrimSuffix(clientKey, ".pub"))
	return nil
}
