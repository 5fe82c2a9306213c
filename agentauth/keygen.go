package agentauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// EnsureKey makes sure a private key exists at path, as the Python client
// does for --client-key: when the file is missing it generates an ed25519
// key there in OpenSSH format (0600, encrypted with o.Passphrase, else
// with M2M_SSH_PASSPHRASE, when either is given), writes the public key
// without a comment to path.pub (0644), and creates the directory (0700).
// An existing file is left alone.
func EnsureKey(path string, o IdentityOptions) (created bool, err error) {
	passphrase := o.passphraser().forNewKey()
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("create key directory: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return false, fmt.Errorf("generate key: %w", err)
	}
	var block *pem.Block
	if len(passphrase) > 0 {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "")
	}
	if err != nil {
		return false, fmt.Errorf("encode key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return false, fmt.Errorf("encode public key: %w", err)
	}

	// O_EXCL: when two processes race to create the key, one wins and
	// the other keeps the winner's key rather than overwriting it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create key file: %w", err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		os.Remove(path)
		return false, fmt.Errorf("write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("write key file: %w", err)
	}
	if err := writeFileMode(path+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return true, fmt.Errorf("write public key: %w", err)
	}
	return true, nil
}

// writeFileMode writes data with exactly mode, whatever the umask.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
