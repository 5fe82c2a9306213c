package agentauth

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// fixtureKey reads a private key from testdata.
func fixtureKey(t testing.TB, name string) ssh.Signer {
	t.Helper()
	data, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fixture(name string) string { return filepath.Join("testdata", name) }

func newLog() (*slog.Logger, *sshtest.Buffer) {
	b := &sshtest.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func TestKnownHostsMatching(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	ecdsa := fixtureKey(t, "host_ecdsa").PublicKey()
	tests := []struct {
		host  string
		port  int
		alias string
		key   ssh.PublicKey
		want  HostKeyProblem // 0: trusted
	}{
		{host: "plain.example", port: 22, key: ed},
		{host: "plain.example", port: 2222, key: ed, want: HostUnknown},
		{host: "port.example", port: 2222, key: ed},
		{host: "port.example", port: 22, key: ed, want: HostUnknown},
		{host: "a.wild.example", port: 22, key: ed},
		{host: "a.wild.example", port: 2222, key: ed, want: HostUnknown}, // OpenSSH: "*.wild.example" is not "[a.wild.example]:2222"
		{host: "x.wildport.example", port: 2200, key: ed},
		{host: "good.neg.example", port: 22, key: ed},
		{host: "bad.neg.example", port: 22, key: ed, want: HostUnknown},
		{host: "changed.example", port: 22, key: ed, want: HostKeyChanged},
		{host: "othertype.example", port: 22, key: ed, want: HostKeyOtherType},
		{host: "mixed.case.example", port: 22, key: ed},
		{host: "MIXED.case.example", port: 22, key: ed},
		{host: "hashed.example", port: 22, key: ed},
		{host: "hashed.example", port: 2222, key: ed},
		{host: "hashed.example", port: 2200, key: ed, want: HostUnknown},
		{host: "marker.example", port: 22, key: ed, want: HostUnknown},
		{host: "10.1.2.3", port: 2222, alias: "alias-name", key: ed},
		{host: "plain.example", port: 22, key: ecdsa, want: HostKeyRevoked},
		{host: "nobody.example", port: 22, key: ed, want: HostUnknown},
	}
	for _, tt := range tests {
		t.Run(net.JoinHostPort(tt.host, strconv.Itoa(tt.port))+"/"+tt.alias, func(t *testing.T) {
			tgt := &sshcfg.Target{Alias: "h", HostName: tt.host, Port: tt.port, HostKeyAlias: tt.alias,
				UserKnownHostsFiles: []string{fixture("known_hosts")}, StrictHostKeyChecking: "yes"}
			c, err := NewHostKeyChecker(tgt, HostKeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Check(tt.key)
			k, trusted := c.Trusted(tt.key)
			if trusted != (tt.want == 0) {
				t.Errorf("Trusted = %v, %v; want trusted %v", k, trusted, tt.want == 0)
			}
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want trusted", err)
				}
				if k.File != fixture("known_hosts") || k.Line < 4 || k.Fingerprint != ssh.FingerprintSHA256(tt.key) {
					t.Errorf("Trusted = %v, want a line of %s with the key", k, fixture("known_hosts"))
				}
				if tt.host == "plain.example" && k.Line != 4 {
					t.Errorf("Trusted line = %d, want 4", k.Line)
				}
				return
			}
			var herr *HostKeyError
			if !errors.As(err, &herr) {
				t.Fatalf("Check = %v, want *HostKeyError", err)
			}
			if herr.Problem != tt.want {
				t.Fatalf("Problem = %d, want %d (%v)", herr.Problem, tt.want, err)
			}
			if !strings.Contains(err.Error(), "Host key verification failed") || herr.Hint() == "" {
				t.Errorf("error %q / hint %q", err, herr.Hint())
			}
		})
	}
}

func TestKnownHostsMalformedLinesWarn(t *testing.T) {
	log, buf := newLog()
	missing := filepath.Join(t.TempDir(), "nope")
	tgt := &sshcfg.Target{HostName: "plain.example", Port: 22,
		UserKnownHostsFiles: []string{missing, fixture("known_hosts")}}
	c, err := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(fixtureKey(t, "host_ed25519").PublicKey()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// One summary line for the file, not one per line.
	if n := strings.Count(out, "malformed known_hosts"); n != 1 {
		t.Errorf("%d warnings for malformed lines, want 1:\n%s", n, out)
	}
	for _, want := range []string{"count=3", "lines=14,15,19", "first=" + fixture("known_hosts") + ":14", missing} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestHostKeyErrorMessages(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	kh := fixture("known_hosts")
	tgt := &sshcfg.Target{Alias: "box", HostName: "changed.example", Port: 22,
		UserKnownHostsFiles: []string{kh}, StrictHostKeyChecking: "no"}
	c, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
	err := c.Check(ed)
	if err == nil {
		t.Fatal("changed key accepted under StrictHostKeyChecking no")
	}
	for _, want := range []string{"Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", kh + ":9", ssh.FingerprintSHA256(ed)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	var herr *HostKeyError
	errors.As(err, &herr)
	if h := herr.Hint(); !strings.Contains(h, "ssh-keygen -R changed.example -f "+kh) {
		t.Errorf("hint = %q", h)
	}

	tgt = &sshcfg.Target{Alias: "box", HostName: "10.0.0.5", Port: 2200,
		UserKnownHostsFiles: []string{"/home/u/.ssh/known_hosts"}, StrictHostKeyChecking: "ask"}
	c, _ = NewHostKeyChecker(tgt, HostKeyOptions{})
	err = c.Check(ed)
	errors.As(err, &herr)
	if herr == nil || herr.Problem != HostUnknown {
		t.Fatalf("unknown host: %v", err)
	}
	for _, want := range []string{"Host key verification failed", "box ([10.0.0.5]:2200)", ssh.FingerprintSHA256(ed)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if h := herr.Hint(); !strings.Contains(h, "ssh-keyscan -p 2200 10.0.0.5 >> /home/u/.ssh/known_hosts") || !strings.Contains(h, "ssh box") {
		t.Errorf("hint = %q", h)
	}
}

func TestStrictHostKeyCheckingNoWarns(t *testing.T) {
	log, buf := newLog()
	tgt := &sshcfg.Target{HostName: "nobody.example", Port: 22, StrictHostKeyChecking: "no"}
	c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
	if err := c.Check(fixtureKey(t, "host_ed25519").PublicKey()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "NOT VERIFIED") {
		t.Errorf("no loud warning:\n%s", buf)
	}
}

func TestAcceptNewWritesHashedAndPlain(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	for _, hashed := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "fresh", ".ssh")
		kh := filepath.Join(dir, "known_hosts")
		tgt := &sshcfg.Target{HostName: "new.example", Port: 2022, StrictHostKeyChecking: "accept-new",
			HashKnownHosts: hashed, UserKnownHostsFiles: []string{kh}}
		c, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
		if err := c.Check(ed); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.HasPrefix(string(data), "|1|"); got != hashed {
			t.Errorf("hashed=%v but file is %q", hashed, data)
		}
		if !hashed && !strings.HasPrefix(string(data), "[new.example]:2022 ssh-ed25519 ") {
			t.Errorf("file = %q", data)
		}
		if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
			t.Errorf("dir mode %v", st.Mode())
		}
		// A new checker trusts it; another key is now a changed key.
		c2, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
		if err := c2.Check(ed); err != nil {
			t.Errorf("recorded key not trusted: %v", err)
		}
		var herr *HostKeyError
		if err := c.Check(fixtureKey(t, "other_ed25519").PublicKey()); !errors.As(err, &herr) || herr.Problem != HostKeyChanged {
			t.Errorf("other key after accept-new: %v", err)
		}
	}
}

func TestAppendKnownHostConcurrent(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte("first.example ssh-ed25519 AAAA"), 0o600) // no final newline
	var wg sync.WaitGroup
	const n = 20
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := appendKnownHost(kh, "host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPukch8BJeQZeDETJID5eKb/grDPHeP7K2tpPvgQnrA2", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(kh)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != n+1 || lines[0] != "first.example ssh-ed25519 AAAA" {
		t.Fatalf("got %d lines:\n%s", len(lines), data)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "host.example ssh-ed25519 AAAAC3") || !strings.HasSuffix(l, "nrA2") {
			t.Errorf("torn line %q", l)
		}
	}
}

// TestAcceptNewConcurrentCheckers: several checkers (processes) meeting
// the same new host record it once.
func TestAcceptNewConcurrentCheckers(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		tgt := &sshcfg.Target{HostName: "new.example", Port: 22, StrictHostKeyChecking: "accept-new", UserKnownHostsFiles: []string{kh}}
		c, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Check(ed); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(kh)
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("%d lines:\n%s", n, data)
	}
}

// TestAlgorithmsPreferKnownTypes checks the order against what OpenSSH
// 9.2's ssh -vvv printed ("prefer hostkeyalgs", "using HostkeyAlgorithms
// verbatim") for the same known_hosts lines and options.
func TestAlgorithmsPreferKnownTypes(t *testing.T) {
	const rsaCerts = "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com"
	const rsaFirst = rsaCerts + ",rsa-sha2-512,rsa-sha2-256"
	const certs = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com," +
		"ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com," +
		"sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com," + rsaCerts
	tests := []struct {
		host  string
		opts  []string
		first string // "" for the resolved list verbatim
	}{
		{"plain.example", nil, ""},
		{"plain.example", []string{"HostKeyAlgorithms +ssh-rsa"}, ""},
		{"othertype.example", nil, rsaFirst},
		{"othertype.example", []string{"HostKeyAlgorithms +ssh-rsa"}, rsaFirst + ",ssh-rsa"},
		{"othertype.example", []string{"HostKeyAlgorithms -ssh-ed25519*"}, rsaFirst},
		// "^" and a full list are the user's order.
		{"othertype.example", []string{"HostKeyAlgorithms ^ssh-rsa"}, ""},
		{"othertype.example", []string{"HostKeyAlgorithms ssh-ed25519,rsa-sha2-256"}, ""},
		// A @cert-authority line puts every certificate algorithm
		// first: the CA's key type says nothing of the host's.
		{"srv.ca.example", nil, certs},
		{"srv.ca.example", []string{"HostKeyAlgorithms +ssh-rsa"}, certs},
		{"nothing.example", nil, ""},
	}
	for _, tt := range tests {
		opts := append([]string{"HostKeyAlias " + tt.host, "UserKnownHostsFile " + fixture("known_hosts"), "GlobalKnownHostsFile none"}, tt.opts...)
		tgt, err := sshcfg.Resolve("box", sshcfg.Options{ConfigFile: "none", Options: opts, Home: t.TempDir(), LocalUser: "u"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewHostKeyChecker(tgt, HostKeyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(c.Algorithms(), ",")
		want := tgt.HostKeyAlgorithms
		if tt.first != "" {
			var rest []string
			for _, a := range strings.Split(want, ",") {
				if !contains(strings.Split(tt.first, ","), a) {
					rest = append(rest, a)
				}
			}
			want = tt.first + "," + strings.Join(rest, ",")
		}
		if got != want {
			t.Errorf("%s %v:\n got %s\nwant %s", tt.host, tt.opts, got, want)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
