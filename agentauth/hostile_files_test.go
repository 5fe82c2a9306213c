//go:build unix

package agentauth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// noBlock bounds every call that reads a hostile file: the test fails,
// rather than hangs, when the code under test blocks.
const noBlock = 5 * time.Second

// hostileFiles makes, in dir, the files that must never be read: a named
// pipe, a link to it, a sparse file over size (made with Truncate, so
// nothing is written), and names a directory and the devices.
func hostileFiles(t *testing.T, dir string, size int64) map[string]string {
	t.Helper()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	os.Mkdir(sub, 0o700)
	big := filepath.Join(dir, "big")
	f, err := os.OpenFile(big, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size + 1)
	f.Close()
	return map[string]string{
		"fifo": fifo, "symlink to a fifo": link, "directory": sub,
		"/dev/zero": "/dev/zero", "over the size bound": big,
	}
}

func TestKnownHostsHostileFiles(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	for name, bad := range hostileFiles(t, t.TempDir(), maxKnownHostsSize) {
		t.Run(name, func(t *testing.T) {
			// Refused with a warning naming it; the next file still counts.
			log, buf := newLog()
			tgt := &sshcfg.Target{HostName: "plain.example", Port: 22, StrictHostKeyChecking: "yes",
				UserKnownHostsFiles: []string{bad, fixture("known_hosts")}}
			err := sshtest.Within(t, noBlock, func() error {
				c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
				return c.Check(ed)
			})
			if err != nil {
				t.Fatalf("key in the next file not trusted: %v", err)
			}
			if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, bad) {
				t.Errorf("no warning naming %s:\n%s", bad, out)
			}

			// Alone, the error for the unknown key names it.
			tgt.UserKnownHostsFiles = tgt.UserKnownHostsFiles[:1]
			err = sshtest.Within(t, noBlock, func() error {
				c, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
				return c.Check(ed)
			})
			var herr *HostKeyError
			if !errors.As(err, &herr) || herr.Problem != HostUnknown {
				t.Fatalf("Check = %v, want an unknown host", err)
			}
			if !strings.Contains(err.Error(), "known_hosts file not read: "+bad) || !strings.Contains(herr.Hint(), "regular files") {
				t.Errorf("error %q / hint %q do not name %s", err, herr.Hint(), bad)
			}
		})
	}
}

// /dev/null as UserKnownHostsFile is the usual way to say "none": empty,
// silently, and accept-new records nothing there.
func TestKnownHostsDevNull(t *testing.T) {
	log, buf := newLog()
	tgt := &sshcfg.Target{HostName: "plain.example", Port: 22, StrictHostKeyChecking: "accept-new",
		UserKnownHostsFiles: []string{os.DevNull}}
	err := sshtest.Within(t, noBlock, func() error {
		c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
		return c.Check(fixtureKey(t, "host_ed25519").PublicKey())
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("warned about /dev/null:\n%s", buf)
	}
}

// accept-new never appends to, nor reads without end, what is not a
// regular file; the connection goes on, as with OpenSSH when it cannot
// write known_hosts.
func TestAcceptNewHostileFiles(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	for name, bad := range hostileFiles(t, t.TempDir(), maxKnownHostsSize) {
		t.Run(name, func(t *testing.T) {
			err := sshtest.Within(t, noBlock, func() error {
				_, err := appendKnownHost(bad, "new.example "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed))), nil)
				return err
			})
			// A directory already fails to open for writing (EISDIR).
			if err == nil || !strings.Contains(err.Error(), bad) {
				t.Fatalf("appendKnownHost = %v, want refused naming %s", err, bad)
			}

			log, buf := newLog()
			tgt := &sshcfg.Target{HostName: "new.example", Port: 22, StrictHostKeyChecking: "accept-new",
				UserKnownHostsFiles: []string{bad}}
			if err := sshtest.Within(t, noBlock, func() error {
				c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
				return c.Check(ed)
			}); err != nil {
				t.Fatalf("accept-new: %v", err)
			}
			if !strings.Contains(buf.String(), "could not record the new host key") {
				t.Errorf("no warning that the key was not recorded:\n%s", buf)
			}
		})
	}
}

// An over-long line is skipped; the right key on the next line counts.
func TestKnownHostsLongLine(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	line := "plain.example " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed)))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	long := "other.example,x" + strings.Repeat("x", 2<<20) + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ed)))
	os.WriteFile(kh, []byte(long+"\n"+line+"\n"), 0o600)
	log, buf := newLog()
	tgt := &sshcfg.Target{HostName: "plain.example", Port: 22, StrictHostKeyChecking: "yes", UserKnownHostsFiles: []string{kh}}
	c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
	if err := c.Check(ed); err != nil {
		t.Fatalf("key after the long line: %v", err)
	}
	if k, _ := c.Trusted(ed); k.Line != 2 {
		t.Errorf("trusted by line %d, want 2", k.Line)
	}
	for _, want := range []string{"count=1", "first=" + kh + ":1", "longer than"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf)
		}
	}
}

func TestEachLine(t *testing.T) {
	const max = 100 << 10 // over the reader's 64 KiB buffer
	x := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name string
		in   string
		want []int // line lengths; -1 for a line too long
		max  int   // 0: max
	}{
		{"empty", "", nil, 0},
		{"short lines", "a\nbb\n\nccc", []int{1, 2, 0, 3}, 0},
		{"over the buffer, under max", x(70<<10) + "\nz\n", []int{70 << 10, 1}, 0},
		{"at max", x(max) + "\nz\n", []int{max, 1}, 0},
		{"one over max", x(max+1) + "\nz\n", []int{-1, 1}, 0},
		{"far over max", x(5*max) + "\nz", []int{-1, 1}, 0},
		{"too long at the end", "a\n" + x(2*max), []int{1, -1}, 0},
		{"CRLF kept for the parser", "a\r\n", []int{2}, 0},
		{"within the buffer, over a small max", "abcdefghi\nabcdefgh\n", []int{-1, 8}, 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			m := max
			if c.max != 0 {
				m = c.max
			}
			err := eachLine(strings.NewReader(c.in), m, func(n int, text []byte) {
				if n != len(got)+1 {
					t.Errorf("line numbered %d, want %d", n, len(got)+1)
				}
				if text == nil {
					got = append(got, -1)
				} else {
					got = append(got, len(text))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("lines %v, want %v", got, c.want)
			}
		})
	}
}

// millionMalformed writes a known_hosts file of n malformed lines of the
// kinds seen in the wild, then the right key for plain.example.
func millionMalformed(t testing.TB, n int, key ssh.PublicKey) string {
	var b bytes.Buffer
	kinds := []string{"host%d ssh-ed25519 AAAAnotbase64!!", "garbage line %d", "@bogus h%d ssh-ed25519 AAAA", "h%d ssh-ed25519"}
	for i := range n {
		fmt.Fprintf(&b, kinds[i%len(kinds)]+"\n", i)
	}
	b.WriteString("plain.example " + string(ssh.MarshalAuthorizedKey(key)))
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return kh
}

// A million malformed lines give one warning with their count, and the
// right key after them still counts.
func TestKnownHostsMillionMalformed(t *testing.T) {
	ed := fixtureKey(t, "host_ed25519").PublicKey()
	kh := millionMalformed(t, 1_000_000, ed)
	log, buf := newLog()
	tgt := &sshcfg.Target{HostName: "plain.example", Port: 22, StrictHostKeyChecking: "yes", UserKnownHostsFiles: []string{kh}}
	start := time.Now()
	// Generous: the race detector slows parsing tenfold.
	err := sshtest.Within(t, time.Minute, func() error {
		c, _ := NewHostKeyChecker(tgt, HostKeyOptions{Logger: log})
		return c.Check(ed)
	})
	t.Logf("1,000,000 malformed lines read and checked in %v", time.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	for _, want := range []string{"count=1000000", "first=" + kh + ":1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func BenchmarkKnownHostsMalformed(b *testing.B) {
	ed := fixtureKey(b, "host_ed25519").PublicKey()
	kh := millionMalformed(b, 1_000_000, ed)
	tgt := &sshcfg.Target{HostName: "plain.example", Port: 22, StrictHostKeyChecking: "yes", UserKnownHostsFiles: []string{kh}}
	for b.Loop() {
		c, _ := NewHostKeyChecker(tgt, HostKeyOptions{})
		if err := c.Check(ed); err != nil {
			b.Fatal(err)
		}
	}
}

// A key file that is not a regular file is refused with its own reason,
// never a chmod hint, quickly; a good key after it is still offered.
func TestIdentityHostileFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := newEd25519(t)
	good := filepath.Join(dir, "good")
	writeKey(t, good, priv)
	files := hostileFiles(t, dir, maxKeyFileSize)
	files["/dev/null"] = os.DevNull
	// A good key whose .pub and -cert.pub are pipes: they must not block.
	pipedPub := filepath.Join(dir, "piped")
	writeKey(t, pipedPub, priv)
	for _, p := range []string{pipedPub + ".pub", pipedPub + "-cert.pub"} {
		os.Remove(p)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wantReason := map[string]string{"over the size bound": "too large to be a key"}
	for name, bad := range files {
		t.Run(name, func(t *testing.T) {
			log, buf := newLog()
			tgt := &sshcfg.Target{User: "u", Alias: "box", IdentityAgent: "none",
				IdentityFiles: []string{bad, good}, CertificateFiles: []string{bad}}
			ids := sshtest.Within(t, noBlock, func() *Identities {
				ids, err := LoadIdentities(tgt, IdentityOptions{Logger: log, Getenv: mapEnv(nil)})
				if err != nil {
					t.Error(err)
				}
				return ids
			})
			if ids == nil {
				t.Fatalf("no identities:\n%s", buf)
			}
			defer ids.Close()
			if got := ids.Signers(); len(got) != 1 || !keysEqual(got[0].PublicKey(), pub) {
				t.Fatalf("offered %v, want the good key", ids.Offered())
			}
			reason := wantReason[name]
			if reason == "" {
				reason = "not a regular file"
			}
			if out := buf.String(); !strings.Contains(out, bad+": "+reason) || strings.Contains(out, "chmod") {
				t.Errorf("want %q for %s and no chmod hint:\n%s", reason, bad, out)
			}
			var kerr *KeyFileError
			for _, s := range ids.skipped {
				if errors.As(s, &kerr) && kerr.Path == bad && strings.Contains(kerr.Hint(), "chmod") {
					t.Errorf("hint %q for %s", kerr.Hint(), bad)
				}
			}
		})
	}
	t.Run("pipes beside a good key", func(t *testing.T) {
		tgt := &sshcfg.Target{User: "u", Alias: "box", IdentityAgent: "none", IdentityFiles: []string{pipedPub}}
		ids := sshtest.Within(t, noBlock, func() *Identities {
			ids, _ := LoadIdentities(tgt, IdentityOptions{Getenv: mapEnv(nil)})
			return ids
		})
		if ids == nil || len(ids.Signers()) != 1 {
			t.Fatal("the key beside pipes was not loaded")
		}
		ids.Close()
	})
}

// The chmod hint is for a regular file of ours that others may read; a
// loose file of someone else's is used, as OpenSSH uses it.
func TestIdentityPermissionHint(t *testing.T) {
	dir := t.TempDir()
	priv, _ := newEd25519(t)
	loose := filepath.Join(dir, "loose")
	writeKey(t, loose, priv)
	os.Chmod(loose, 0o644)
	data, err := readPrivateKeyFile(loose, true)
	var kerr *KeyFileError
	if !errors.As(err, &kerr) || kerr.Hint() != "run 'chmod 600 "+loose+"'" {
		t.Fatalf("loose key of ours: %v, %v", data != nil, err)
	}
	if os.Geteuid() != 0 {
		t.Skip("making a file of someone else's needs root")
	}
	os.Chown(loose, 65534, 65534)
	if _, err := readPrivateKeyFile(loose, true); err != nil {
		t.Fatalf("loose key of someone else's: %v", err)
	}
}
