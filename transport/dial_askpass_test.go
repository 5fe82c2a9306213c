package transport

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// TestDialWaitsForAPerson: the connect timeout does not run while the
// askpass program asks a person, who takes longer than it to type a
// password (as ssh's ConnectTimeout does not cover its prompts). Without
// the pause the connection is cut after three seconds and the login
// fails. Three, not one: the handshake's own part of it, under the race
// detector on a loaded machine, has taken over a second.
func TestDialWaitsForAPerson(t *testing.T) {
	u, pass := sshtest.Password(t)
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_pass", sshtest.KeyOptions{})
	srv := sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{key.Public}, LoginUser: u.Username,
		Settings: []string{"PasswordAuthentication yes", "AuthenticationMethods publickey,password"}})
	kh := sshtest.WriteFile(t, dir, "known_hosts", srv.KnownHosts()...)
	// The person: seven seconds to answer, over twice the timeout.
	askpass := sshtest.WriteFile(t, dir, "askpass", "#!/bin/sh", "sleep 7", "echo '"+pass+"'")
	if err := os.Chmod(askpass, 0o700); err != nil {
		t.Fatal(err)
	}
	logs := &sshtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := sshcfg.Options{ConfigFile: "none", Home: dir, Logger: logger, Options: []string{
		"HostName " + srv.Host, fmt.Sprintf("Port %d", srv.Port), "User " + u.Username,
		"IdentityFile " + key.Path, "IdentityAgent none", "UserKnownHostsFile " + kh,
		"StrictHostKeyChecking yes", "ConnectTimeout 3",
	}}
	env := map[string]string{"SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force"}
	d := testDialer(t, "box", o, func(k string) string { return env[k] })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, logs)
	}
	c.Close()
}
