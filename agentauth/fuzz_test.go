package agentauth

import (
	"bytes"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzKnownHosts feeds arbitrary known_hosts text through the line reader
// and the parser: no panic, every line numbered once, and every key line
// kept can be matched and described.
func FuzzKnownHosts(f *testing.F) {
	if data, err := os.ReadFile(fixture("known_hosts")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("@cert-authority *.x ssh-ed25519 AAAA\n|1|AAAA|BBBB ssh-rsa AAAA\n[h]:22,!x ssh-ed25519"))
	f.Add([]byte(strings.Repeat("x", 300) + "\n\n#c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 256 // small, so that the fuzzer reaches over-long lines
		db := &knownHosts{}
		var bad badLines
		if err := eachLine(bytes.NewReader(data), max, func(n int, text []byte) {}); err != nil {
			t.Fatal(err)
		}
		lines := 0
		eachLine(bytes.NewReader(data), max, func(n int, text []byte) {
			lines++
			if n != lines {
				t.Fatalf("line %d numbered %d", lines, n)
			}
			if len(text) > max || bytes.IndexByte(text, '\n') >= 0 {
				t.Fatalf("line %d: %d bytes, newline %v", n, len(text), bytes.IndexByte(text, '\n'))
			}
		})
		if want := bytes.Count(data, []byte("\n")); lines != want && lines != want+1 {
			t.Fatalf("%d lines in %d newlines", lines, want)
		}
		if err := db.read(bytes.NewReader(data), "fuzz", &bad); err != nil {
			t.Fatal(err)
		}
		if bad.count > 0 && (bad.firstErr == nil || bad.firstErr.Error() == "") {
			t.Fatal("a malformed line without a reason")
		}
		for _, l := range db.lines {
			if l.key == nil {
				t.Fatal("key line without a key")
			}
			l.matches("host.example")
			l.matches("[host.example]:2222")
			_ = l.known().String()
		}
	})
}

// FuzzKeyFile feeds arbitrary bytes to the private key, public key and
// certificate parsers: no panic, and a key parsed has a public half.
// No passphrase is available, so an encrypted key's KDF never runs.
func FuzzKeyFile(f *testing.F) {
	for _, name := range []string{"host_ed25519", "host_ecdsa", "host_rsa", "ca", "host_ed25519.pub", "ca.pub"} {
		if data, err := os.ReadFile(fixture(name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("ssh-ed25519-cert-v01@openssh.com AAAA comment\n"))
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"))
	none := passphraser{getenv: func(string) string { return "" }}
	f.Fuzz(func(t *testing.T, data []byte) {
		kf := &keyFile{source: "fuzz"}
		parseKey(kf, data, "", none, func(ssh.PublicKey) bool { return false })
		if kf.signer != nil && kf.pub == nil {
			t.Fatal("signer without a public key")
		}
		if kf.signer == nil && kf.err == nil {
			t.Fatal("neither a signer nor an error")
		}
		pub, err := parsePublicKey(data)
		if err != nil {
			return
		}
		_ = ssh.FingerprintSHA256(pub)
		if cert, err := asCertificate(pub, "fuzz"); err == nil {
			_ = ssh.FingerprintSHA256(cert.Key)
			_ = cert.SignatureKey
		}
	})
}

// FuzzEmbeddedPublicKey feeds arbitrary bytes, bare and inside an OpenSSH
// private key envelope, to the reader of the public key such a file
// carries: no panic, and a key found can be described.
func FuzzEmbeddedPublicKey(f *testing.F) {
	if data, err := os.ReadFile(fixture("host_ed25519")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"))
	f.Add([]byte("\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		wrapped := pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: append([]byte("openssh-key-v1\x00"), data...)})
		for _, in := range [][]byte{data, wrapped} {
			if pub := embeddedPublicKey(in); pub != nil {
				_ = ssh.FingerprintSHA256(pub)
				_ = isSecurityKey(pub)
			}
		}
	})
}
