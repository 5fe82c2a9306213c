package transport

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// algorithmCase is one server that offers one thing, and client lines.
type algorithmCase struct {
	name string
	// server are sshd_config lines; hostKey and userKey the key types
	// (ed25519 when empty).
	server           []string
	hostKey, userKey string
	// client is the line in the client's Host block, "" for none.
	client string
	// keyword is what m2m-ssh's error must name when the login fails.
	keyword string
	// warns, when set, must be in m2m-ssh's log: an algorithm it lacks.
	warns string
	// lacking: the config leaves only algorithms x/crypto lacks, so ssh
	// logs in and m2m-ssh must refuse, naming the keyword, before it
	// connects.
	lacking bool
}

// TestAlgorithmsAgainstOpenSSH is the differential test of algorithm
// negotiation: a real sshd offers one legacy algorithm (or the client's
// policy allows one), and m2m-ssh must log in exactly when OpenSSH's ssh
// does with the same configuration, naming the keyword when it fails.
func TestAlgorithmsAgainstOpenSSH(t *testing.T) {
	sshPath := sshtest.LookPath(t, "ssh")
	legacy := []struct {
		name, server, keyword string
		clients               []string
		hostKey, userKey      string
	}{
		{"kex group14-sha1", "KexAlgorithms diffie-hellman-group14-sha1", "KexAlgorithms", []string{"", "KexAlgorithms +diffie-hellman-group14-sha1"}, "", ""},
		{"kex group1-sha1", "KexAlgorithms diffie-hellman-group1-sha1", "KexAlgorithms", []string{"", "KexAlgorithms +diffie-hellman-group1-sha1"}, "", ""},
		{"host key ssh-rsa", "HostKeyAlgorithms ssh-rsa", "HostKeyAlgorithms", []string{"", "HostKeyAlgorithms +ssh-rsa"}, "rsa", ""},
		{"cipher aes128-cbc", "Ciphers aes128-cbc", "Ciphers", []string{"", "Ciphers +aes128-cbc"}, "", ""},
		{"cipher 3des-cbc", "Ciphers 3des-cbc", "Ciphers", []string{"", "Ciphers +3des-cbc"}, "", ""},
		// hmac-sha1 is in OpenSSH 9.2's defaults: both log in either way.
		{"mac hmac-sha1", "Ciphers aes128-ctr\nMACs hmac-sha1", "MACs", []string{"", "MACs +hmac-sha1"}, "", ""},
		{"mac hmac-sha1-96", "Ciphers aes128-ctr\nMACs hmac-sha1-96", "MACs", []string{"", "MACs +hmac-sha1-96"}, "", ""},
		{"user key ssh-rsa", "PubkeyAcceptedAlgorithms ssh-rsa", "PubkeyAcceptedAlgorithms", []string{"", "PubkeyAcceptedAlgorithms +ssh-rsa", "PubkeyAcceptedAlgorithms ^ssh-rsa"}, "", "rsa"},
	}
	var cases []algorithmCase
	for _, l := range legacy {
		for _, client := range l.clients {
			name := l.name + "/none"
			if client != "" {
				name = l.name + "/" + strings.Fields(client)[1][:1]
			}
			cases = append(cases, algorithmCase{name: name, server: strings.Split(l.server, "\n"),
				hostKey: l.hostKey, userKey: l.userKey, client: client, keyword: l.keyword})
		}
	}
	// A restrictive policy on the client: against a server that offers
	// something else, and against one that offers it.
	for _, p := range []struct {
		name, client, server, keyword, hostKey string
	}{
		{"policy cipher", "Ciphers aes256-gcm@openssh.com", "Ciphers aes128-ctr,aes256-ctr", "Ciphers", ""},
		{"policy kex", "KexAlgorithms curve25519-sha256", "KexAlgorithms ecdh-sha2-nistp256,diffie-hellman-group14-sha256", "KexAlgorithms", ""},
		{"policy mac", "MACs hmac-sha2-512-etm@openssh.com", "Ciphers aes128-ctr\nMACs hmac-sha2-256,hmac-sha2-256-etm@openssh.com", "MACs", ""},
		{"policy host key", "HostKeyAlgorithms ssh-ed25519", "HostKeyAlgorithms ecdsa-sha2-nistp256", "HostKeyAlgorithms", "ecdsa"},
		{"policy removes", "KexAlgorithms -curve25519*,sntrup*,ecdh-*", "KexAlgorithms curve25519-sha256,ecdh-sha2-nistp256", "KexAlgorithms", ""},
	} {
		cases = append(cases,
			algorithmCase{name: p.name + "/refused", client: p.client, server: strings.Split(p.server, "\n"), keyword: p.keyword, hostKey: p.hostKey},
			algorithmCase{name: p.name + "/allowed", client: p.client, keyword: p.keyword})
	}
	// Algorithms OpenSSH has and x/crypto lacks: left out with a
	// warning, the rest proposed; ssh uses them.
	cases = append(cases,
		algorithmCase{name: "lacking/cipher with another", client: "Ciphers aes192-cbc,aes128-ctr",
			server: []string{"Ciphers aes192-cbc,aes128-ctr"}, keyword: "Ciphers", warns: "aes192-cbc"},
		algorithmCase{name: "lacking/mac with another", client: "MACs umac-128@openssh.com,hmac-sha2-256",
			server: []string{"Ciphers aes128-ctr", "MACs umac-128@openssh.com,hmac-sha2-256"}, keyword: "MACs", warns: "umac-128@openssh.com"},
		algorithmCase{name: "lacking/kex alone", client: "KexAlgorithms sntrup761x25519-sha512@openssh.com",
			keyword: "KexAlgorithms", lacking: true},
	)
	failures, ran := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ran++
			sshErr, m2mErr := c.run(t, sshPath)
			if c.lacking {
				var ae *AlgorithmError
				if sshErr != nil || !errors.As(m2mErr, &ae) || ae.Keyword != c.keyword {
					t.Fatalf("ssh: %v; m2m-ssh: %v; want ssh to log in and m2m-ssh to refuse %s", sshErr, m2mErr, c.keyword)
				}
				return
			}
			if (sshErr == nil) != (m2mErr == nil) {
				t.Fatalf("ssh: %v; m2m-ssh: %v", sshErr, m2mErr)
			}
			if m2mErr == nil {
				return
			}
			failures++
			msg := m2mErr.Error() + " " + verdict.Hint(m2mErr)
			if !strings.Contains(msg, c.keyword) {
				t.Errorf("error does not name %s: %s", c.keyword, msg)
			}
			if !verdict.Permanent(m2mErr) {
				t.Errorf("a negotiation failure is not marked permanent: %v", m2mErr)
			}
			t.Logf("both refused; m2m-ssh: %s", msg)
		})
	}
	if ran > 4 && (failures == 0 || failures == ran) {
		t.Errorf("%d of %d cases failed to log in: the cases do not tell success from failure", failures, ran)
	}
}

// run starts the case's sshd and logs in to it with ssh and with m2m-ssh.
func (c algorithmCase) run(t *testing.T, sshPath string) (sshErr, m2mErr error) {
	dir := t.TempDir()
	keyType := c.userKey
	if keyType == "" {
		keyType = "ed25519"
	}
	key := sshtest.Keygen(t, dir, "id_"+keyType, sshtest.KeyOptions{Type: keyType})
	hostKey := c.hostKey
	if hostKey == "" {
		hostKey = "ed25519"
	}
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{key.Public},
		HostKeyTypes:   []string{hostKey},
		Extra:          c.server,
	})
	kh := sshtest.WriteFile(t, dir, "known_hosts", sshd.KnownHosts()...)
	lines := []string{"Host target"}
	if c.client != "" {
		lines = append(lines, "  "+c.client)
	}
	lines = append(lines,
		"Host *",
		"  HostName 127.0.0.1",
		"  Port "+strconv.Itoa(sshd.Port),
		"  User "+sshd.User,
		"  IdentityFile "+key.Path,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  UserKnownHostsFile "+kh,
		"  GlobalKnownHostsFile none",
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
		"  ConnectTimeout 20",
	)
	config := sshtest.WriteFile(t, dir, "ssh_config", lines...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshPath, "-F", config, "target", "true")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		sshErr = errors.New(strings.TrimSpace(stderr.String()))
	}

	var log sshtest.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := testDialer(t, "target", sshcfg.Options{ConfigFile: config, Home: dir, Logger: logger}, nil)
	client, m2mErr := d.Dial(ctx)
	if m2mErr == nil {
		client.Close()
	}
	if c.warns != "" && !strings.Contains(log.String(), c.warns) {
		t.Errorf("m2m-ssh's log does not name %s", c.warns)
	}
	if t.Failed() || (sshErr == nil) != (m2mErr == nil) {
		t.Logf("m2m-ssh log:\n%s", log.String())
	}
	return sshErr, m2mErr
}
