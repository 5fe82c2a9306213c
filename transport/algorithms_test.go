package transport

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// resolveWith resolves alias "h" with config lines, no files.
func resolveWith(t *testing.T, opts ...string) *sshcfg.Target {
	t.Helper()
	tg, err := sshcfg.Resolve("h", sshcfg.Options{ConfigFile: "none", Options: opts, Home: t.TempDir(), LocalUser: "u"})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestNewAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []string
		check   func(t *testing.T, a *algorithms)
		warns   string // in the log, "" for no warning
		errWord string // the keyword the error names, "" for none
	}{
		{name: "defaults leave out what OpenSSH disables", check: func(t *testing.T, a *algorithms) {
			for _, bad := range []string{"diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1", "ssh-rsa", "aes128-cbc", "hmac-sha1-96", "mlkem768x25519-sha256"} {
				if slices.Contains(slices.Concat(a.kex, a.hostKeys, a.ciphers, a.macs), bad) {
					t.Errorf("%s proposed by default", bad)
				}
			}
			if !slices.Contains(a.macs, "hmac-sha1") {
				t.Errorf("hmac-sha1, in OpenSSH's defaults, is not proposed: %v", a.macs)
			}
		}},
		{name: "plus adds a legacy one", opts: []string{"KexAlgorithms +diffie-hellman-group14-sha1"}, check: func(t *testing.T, a *algorithms) {
			if a.kex[len(a.kex)-1] != "diffie-hellman-group14-sha1" {
				t.Errorf("kex %v does not end with the added one", a.kex)
			}
		}},
		{name: "caret puts first", opts: []string{"Ciphers ^aes128-cbc"}, check: func(t *testing.T, a *algorithms) {
			if a.ciphers[0] != "aes128-cbc" {
				t.Errorf("ciphers %v", a.ciphers)
			}
		}},
		{name: "minus removes", opts: []string{"MACs -hmac-sha2-*"}, check: func(t *testing.T, a *algorithms) {
			if !slices.Equal(a.macs, []string{"hmac-sha1"}) {
				t.Errorf("macs %v", a.macs)
			}
		}},
		{name: "one x/crypto lacks is warned about", opts: []string{"Ciphers aes256-cbc,aes128-ctr"}, warns: "aes256-cbc",
			check: func(t *testing.T, a *algorithms) {
				if !slices.Equal(a.ciphers, []string{"aes128-ctr"}) {
					t.Errorf("ciphers %v", a.ciphers)
				}
			}},
		{name: "defaults x/crypto lacks are not warned about", opts: []string{"MACs -hmac-sha1"}},
		{name: "none left", opts: []string{"MACs umac-128-etm@openssh.com"}, errWord: "MACs"},
		{name: "a Target built by hand has OpenSSH's defaults", check: func(t *testing.T, a *algorithms) {
			b, err := newAlgorithms(&sshcfg.Target{}, slog.New(slog.DiscardHandler))
			if err != nil || !slices.Equal(a.kex, b.kex) || !slices.Equal(a.pubkey, b.pubkey) || !slices.Equal(a.hostKeys, b.hostKeys) {
				t.Errorf("zero Target: %v, %+v; resolved: %+v", err, b, a)
			}
		}},
		{name: "host keys none left", opts: []string{"HostKeyAlgorithms sk-ssh-ed25519@openssh.com"}, errWord: "HostKeyAlgorithms"},
		// OpenSSH's default set, in the order fastest here: ChaCha20 is
		// OpenSSL assembly in ssh but portable Go in x/crypto.
		{name: "default ciphers: the same set, AES-GCM first where the CPU has it", check: func(t *testing.T, a *algorithms) {
			def := strings.Split(sshcfg.DefaultAlgorithms("Ciphers"), ",")
			if !slices.Equal(slices.Sorted(slices.Values(a.ciphers)), slices.Sorted(slices.Values(def))) {
				t.Errorf("ciphers %v, want the set %v", a.ciphers, def)
			}
			if aesGCMHardware() {
				if a.ciphers[0] != ssh.CipherAES128GCM {
					t.Errorf("ciphers %v, want %s first", a.ciphers, ssh.CipherAES128GCM)
				}
			} else if !slices.Equal(a.ciphers, def) {
				t.Errorf("ciphers %v, want OpenSSH's order %v", a.ciphers, def)
			}
		}},
		{name: "ciphers appended to: still fastest first", opts: []string{"Ciphers +aes128-cbc"}, check: func(t *testing.T, a *algorithms) {
			if aesGCMHardware() && a.ciphers[0] != ssh.CipherAES128GCM {
				t.Errorf("ciphers %v, want %s first", a.ciphers, ssh.CipherAES128GCM)
			}
			if a.ciphers[len(a.ciphers)-1] != "aes128-cbc" {
				t.Errorf("ciphers %v do not end with the added one", a.ciphers)
			}
		}},
		{name: "an order the user chose is kept", opts: []string{"Ciphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com"}, check: func(t *testing.T, a *algorithms) {
			if want := []string{"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"}; !slices.Equal(a.ciphers, want) {
				t.Errorf("ciphers %v, want %v", a.ciphers, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			a, err := newAlgorithms(resolveWith(t, tc.opts...), slog.New(slog.NewTextHandler(&log, nil)))
			if tc.errWord != "" {
				var ae *AlgorithmError
				if !errors.As(err, &ae) || ae.Keyword != tc.errWord || !verdict.Permanent(err) || !strings.Contains(err.Error(), tc.errWord) {
					t.Fatalf("err = %v, want a permanent AlgorithmError naming %s", err, tc.errWord)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.warns == "" && log.Len() > 0 {
				t.Errorf("unexpected warning: %s", log.String())
			}
			if tc.warns != "" && !strings.Contains(log.String(), tc.warns) {
				t.Errorf("no warning naming %s: %q", tc.warns, log.String())
			}
			if tc.check != nil && a != nil {
				tc.check(t, a)
			}
		})
	}
}

func TestAcceptedFor(t *testing.T) {
	def := strings.Split(resolveWith(t).PubkeyAcceptedAlgorithms, ",")
	plus := strings.Split(resolveWith(t, "PubkeyAcceptedAlgorithms +ssh-rsa").PubkeyAcceptedAlgorithms, ",")
	caret := strings.Split(resolveWith(t, "PubkeyAcceptedAlgorithms ^ssh-rsa-cert-v01@openssh.com,ssh-rsa").PubkeyAcceptedAlgorithms, ",")
	for _, tc := range []struct {
		keyType  string
		accepted []string
		want     []string
	}{
		{"ssh-rsa", def, []string{"rsa-sha2-512", "rsa-sha2-256"}},
		{"ssh-rsa", plus, []string{"rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"}},
		{"ssh-rsa", caret, []string{"ssh-rsa", "rsa-sha2-512", "rsa-sha2-256"}},
		{"ssh-rsa-cert-v01@openssh.com", def, []string{"rsa-sha2-512", "rsa-sha2-256"}},
		{"ssh-rsa-cert-v01@openssh.com", caret, []string{"ssh-rsa", "rsa-sha2-512", "rsa-sha2-256"}},
		{"ssh-ed25519", def, []string{"ssh-ed25519"}},
		{"ssh-ed25519-cert-v01@openssh.com", []string{"ssh-ed25519"}, nil},
		{"ssh-ed25519", []string{"rsa-sha2-256"}, nil},
		{"sk-ssh-ed25519@openssh.com", def, []string{"sk-ssh-ed25519@openssh.com"}},
		{"ssh-dss", def, nil},
	} {
		if got := acceptedFor(tc.keyType, tc.accepted); !slices.Equal(got, tc.want) {
			t.Errorf("acceptedFor(%s, %v) = %v, want %v", tc.keyType, tc.accepted, got, tc.want)
		}
	}
}

func TestAcceptedSigner(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := ssh.NewSignerFromKey(edKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := ssh.NewSignerFromKey(rsaKey)
	a := &algorithms{pubkey: strings.Split(resolveWith(t, "PubkeyAcceptedAlgorithms -ssh-ed25519").PubkeyAcceptedAlgorithms, ",")}
	ss := a.signers([]ssh.Signer{ed, rs})
	if len(ss) != 2 {
		t.Fatalf("%d signers, want the 2 in place", len(ss))
	}
	if algos := ss[0].(ssh.MultiAlgorithmSigner).Algorithms(); len(algos) != 0 {
		t.Errorf("ed25519 key left with %v, want none", algos)
	}
	if _, err := ss[0].Sign(rand.Reader, []byte("x")); err == nil {
		t.Error("a key PubkeyAcceptedAlgorithms leaves out signed")
	}
	if _, err := ss[1].(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, []byte("x"), ssh.KeyAlgoRSA); err == nil {
		t.Error("an RSA key signed with ssh-rsa, which the default leaves out")
	}
	sig, err := ss[1].(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, []byte("x"), ssh.KeyAlgoRSASHA512)
	if err != nil || sig.Format != ssh.KeyAlgoRSASHA512 {
		t.Errorf("rsa-sha2-512: %v, %v", sig, err)
	}
	if !a.rsaSHA1Left([]ssh.Signer{rs}) || a.rsaSHA1Left([]ssh.Signer{ed}) {
		t.Error("rsaSHA1Left does not tell an RSA key from an ed25519 key")
	}
}

func TestExplain(t *testing.T) {
	a := &algorithms{}
	for _, tc := range []struct {
		what, keyword string
	}{
		{"key exchange", "KexAlgorithms"},
		{"host key", "HostKeyAlgorithms"},
		{"client to server cipher", "Ciphers"},
		{"server to client cipher", "Ciphers"},
		{"client to server MAC", "MACs"},
		{"server to client MAC", "MACs"},
	} {
		raw := fmt.Errorf("ssh: handshake failed: %w", &ssh.AlgorithmNegotiationError{
			What: tc.what, SupportedAlgorithms: []string{"ours-1", "ext-info-c", "kex-strict-c-v00@openssh.com"},
			RequestedAlgorithms: []string{"aes128-cbc", "diffie-hellman-group14-sha1", "ssh-rsa", "hmac-sha1-96", "kex-strict-s-v00@openssh.com"}})
		err := a.explain(raw, raw, nil)
		var ne *NegotiationError
		if !errors.As(err, &ne) || ne.Keyword != tc.keyword || !verdict.Permanent(err) {
			t.Fatalf("%s: %v", tc.what, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.keyword) || !strings.Contains(msg, "ours-1") || !strings.Contains(msg, "ssh-rsa") ||
			strings.Contains(msg, "kex-strict") || strings.Contains(msg, "ext-info") {
			t.Errorf("%s: message %q", tc.what, msg)
		}
		if h := ne.Hint(); !strings.Contains(h, "'"+tc.keyword+" +") {
			t.Errorf("%s: hint %q does not say what to add", tc.what, h)
		}
	}
	other := errors.New("ssh: handshake failed: EOF")
	if got := a.explain(other, other, nil); got != other {
		t.Errorf("an unrelated error came back as %v", got)
	}
}

func TestCASignature(t *testing.T) {
	_, caKey, _ := ed25519.GenerateKey(rand.Reader)
	ca, _ := ssh.NewSignerFromKey(caKey)
	hostPub, _, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewPublicKey(hostPub)
	cert := &ssh.Certificate{Key: hk, CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	called := false
	next := func(string, net.Addr, ssh.PublicKey) error { called = true; return nil }
	refuse := &algorithms{caSigs: []string{"rsa-sha2-512"}}
	err := refuse.checkCASignature(next)("h", nil, cert)
	var ce *CASignatureError
	if !errors.As(err, &ce) || called || !strings.Contains(err.Error(), "CASignatureAlgorithms") {
		t.Fatalf("err = %v (next called %v), want a CASignatureError before the known hosts", err, called)
	}
	accept := &algorithms{caSigs: []string{"ssh-ed25519"}}
	if err := accept.checkCASignature(next)("h", nil, cert); err != nil || !called {
		t.Fatalf("err = %v, next called %v", err, called)
	}
}
