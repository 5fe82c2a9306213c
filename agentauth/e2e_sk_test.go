package agentauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// skKey is a security key without the hardware: a software key behind
// the public key and signature formats of PROTOCOL.u2f, so that what
// sshd verifies is exactly what an authenticator's signature would be.
type skKey struct {
	pub     ssh.PublicKey
	sign    func(digest []byte) ([]byte, error) // the primitive's signature blob
	app     string
	counter uint32
	raw     []byte // the ed25519 public key, for the key file
}

const skUserPresent = 0x01

func newSKEd25519(t *testing.T) *skKey {
	t.Helper()
	pk, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.ParsePublicKey(ssh.Marshal(struct{ Name, Key, App string }{ssh.KeyAlgoSKED25519, string(pk), "ssh:"}))
	if err != nil {
		t.Fatal(err)
	}
	return &skKey{pub: pub, app: "ssh:", raw: pk, sign: func(blob []byte) ([]byte, error) { return ed25519.Sign(priv, blob), nil }}
}

func newSKECDSA(t *testing.T) *skKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	q := ek.Bytes() // the uncompressed point, as the wire format wants
	pub, err := ssh.ParsePublicKey(ssh.Marshal(struct{ Name, Curve, Q, App string }{ssh.KeyAlgoSKECDSA256, "nistp256", string(q), "ssh:"}))
	if err != nil {
		t.Fatal(err)
	}
	return &skKey{pub: pub, app: "ssh:", sign: func(blob []byte) ([]byte, error) {
		h := sha256.Sum256(blob)
		r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
		if err != nil {
			return nil, err
		}
		return ssh.Marshal(struct{ R, S *big.Int }{r, s}), nil
	}}
}

// signature signs data as an authenticator does: over SHA256(application),
// the flags, the counter and SHA256(data), with the user present.
func (k *skKey) signature(data []byte) (*ssh.Signature, error) {
	k.counter++
	app := sha256.Sum256([]byte(k.app))
	msg := sha256.Sum256(data)
	blob := append(app[:], skUserPresent)
	blob = binary.BigEndian.AppendUint32(blob, k.counter)
	blob = append(blob, msg[:]...)
	sig, err := k.sign(blob)
	if err != nil {
		return nil, err
	}
	rest := binary.BigEndian.AppendUint32([]byte{skUserPresent}, k.counter)
	return &ssh.Signature{Format: k.pub.Type(), Blob: sig, Rest: rest}, nil
}

// skAgent is an ssh-agent holding security keys, as ssh-agent does with
// its sk middleware; served over the agent protocol by x/crypto's
// agent.ServeAgent.
type skAgent struct{ keys []*skKey }

func (a *skAgent) List() ([]*agent.Key, error) {
	var ks []*agent.Key
	for _, k := range a.keys {
		ks = append(ks, &agent.Key{Format: k.pub.Type(), Blob: k.pub.Marshal(), Comment: "security key"})
	}
	return ks, nil
}

func (a *skAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	for _, k := range a.keys {
		if keysEqual(k.pub, key) {
			return k.signature(data)
		}
	}
	return nil, errors.New("no such key")
}

var errReadOnlyAgent = errors.New("this test agent holds fixed keys")

func (a *skAgent) Add(agent.AddedKey) error       { return errReadOnlyAgent }
func (a *skAgent) Remove(ssh.PublicKey) error     { return errReadOnlyAgent }
func (a *skAgent) RemoveAll() error               { return errReadOnlyAgent }
func (a *skAgent) Lock([]byte) error              { return errReadOnlyAgent }
func (a *skAgent) Unlock([]byte) error            { return errReadOnlyAgent }
func (a *skAgent) Signers() ([]ssh.Signer, error) { return nil, errReadOnlyAgent }
func (a *skAgent) keyLine(i int) string           { return string(ssh.MarshalAuthorizedKey(a.keys[i].pub)) }

// serveSKAgent serves a on a Unix socket and returns its path.
func serveSKAgent(t *testing.T, a *skAgent) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sk") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return sshtest.Serve(t, "unix", filepath.Join(dir, "agent.sock"), func(c net.Conn) { agent.ServeAgent(a, c) })
}

// writeSKKeyFile writes an OpenSSH private key file of k as ssh-keygen
// -t ed25519-sk does (key handle and all), unencrypted or with an
// encrypted private section (whose content does not matter: nothing may
// try to decrypt it).
func writeSKKeyFile(t *testing.T, dir, name string, k *skKey, encrypted bool) string {
	t.Helper()
	cipher, kdf, kdfOpts := "none", "none", ""
	if encrypted {
		cipher, kdf = "aes256-ctr", "bcrypt"
		kdfOpts = string(ssh.Marshal(struct {
			Salt   string
			Rounds uint32
		}{"0123456789abcdef", 16}))
	}
	// The private half, as PROTOCOL.u2f gives it: the public fields,
	// then flags, key handle and reserved.
	var fields []byte
	switch k.pub.Type() {
	case ssh.KeyAlgoSKED25519:
		fields = ssh.Marshal(struct{ Name, Key, App string }{ssh.KeyAlgoSKED25519, string(k.raw), k.app})
	default:
		t.Fatalf("no key file writer for %s", k.pub.Type())
	}
	priv := ssh.Marshal(struct {
		Check1, Check2 uint32
		Rest           []byte `ssh:"rest"`
	}{7, 7, append(fields, ssh.Marshal(struct {
		Flags            byte
		Handle, Reserved string
		Comment          string
		Pad1, Pad2, Pad3 byte
	}{skUserPresent, "key handle", "", "sk", 1, 2, 3})...)})
	body := ssh.Marshal(struct {
		CipherName, KdfName, KdfOpts string
		NumKeys                      uint32
		PubKey, PrivKeyBlock         string
	}{cipher, kdf, kdfOpts, 1, string(k.pub.Marshal()), string(priv)})
	data := pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: append([]byte("openssh-key-v1\x00"), body...)})
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestE2ESecurityKeyInAgent: sk-ssh-ed25519 and sk-ecdsa-sha2-nistp256
// keys held by an agent log in to a real sshd, which verifies their
// signatures (user presence included) as it would a hardware key's.
func TestE2ESecurityKeyInAgent(t *testing.T) {
	a := &skAgent{keys: []*skKey{newSKEd25519(t), newSKECDSA(t)}}
	sock := serveSKAgent(t, a)
	for i, want := range []string{"ED25519-SK", "ECDSA-SK"} {
		t.Run(want, func(t *testing.T) {
			srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{a.keyLine(i)}})
			tgt := e2eTarget(t, srv, t.TempDir())
			tgt.IdentityAgent = sock
			if err := login(t, tgt, IdentityOptions{}); err != nil {
				t.Fatalf("login: %v", err)
			}
			// sshd's log is copied as it comes: wait for the line.
			srv.WaitLog(t, "Accepted publickey for "+srv.User)
			if !strings.Contains(srv.Log(), want) {
				t.Errorf("sshd did not accept the %s key:\n%s", want, srv.Log())
			}
		})
	}
}

// TestE2ESecurityKeyFile: an sk key file, which x/crypto cannot sign
// with, is used through the agent when the agent holds its key, and
// otherwise refused with the hint to ssh-add it; nobody is asked for a
// passphrase it could not use.
func TestE2ESecurityKeyFile(t *testing.T) {
	k := newSKEd25519(t)
	a := &skAgent{keys: []*skKey{k}}
	sock := serveSKAgent(t, a)
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{a.keyLine(0)}})
	for _, encrypted := range []bool{false, true} {
		dir := t.TempDir()
		path := writeSKKeyFile(t, dir, "id_ed25519_sk", k, encrypted)
		prog := askpassScript(t, dir, "a passphrase")
		env := map[string]string{"SSH_ASKPASS": prog, "SSH_ASKPASS_REQUIRE": "force"}
		name := "plain"
		if encrypted {
			name = "encrypted"
		}
		t.Run(name+"/agent holds it", func(t *testing.T) {
			tgt := e2eTarget(t, srv, t.TempDir())
			tgt.IdentityAgent, tgt.IdentityFiles, tgt.IdentitiesOnly = sock, []string{path}, true
			if err := login(t, tgt, IdentityOptions{Getenv: mapEnv(env)}); err != nil {
				t.Fatalf("login: %v", err)
			}
		})
		t.Run(name+"/no agent", func(t *testing.T) {
			tgt := e2eTarget(t, srv, t.TempDir())
			tgt.IdentityFiles = []string{path}
			tgt.BatchMode = true // no password to fall back on
			err := login(t, tgt, IdentityOptions{Getenv: mapEnv(env)})
			want := "security-key files are used through the agent: ssh-add " + path
			if !strings.Contains(err.Error(), "security-key file") || verdict.Hint(err) != want {
				t.Fatalf("login = %v (hint %q); want the hint %q", err, verdict.Hint(err), want)
			}
		})
		if p := readLines(t, filepath.Join(dir, "prompts")); len(p) > 0 {
			t.Errorf("askpass was asked %q for a security-key file", p)
		}
	}
}
