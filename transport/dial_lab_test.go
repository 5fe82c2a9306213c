package transport

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// lab is one real sshd on 127.0.0.1 reached under many aliases: directly,
// through relays standing in for jump hosts and flaky networks, through
// jump hosts (the same sshd again) and through ProxyCommands.
type lab struct {
	dir    string
	sshd   *sshtest.SSHD
	key    sshtest.Key
	hop1   *sshtest.Relay // the sshd as jump host hop1
	hop2   *sshtest.Relay // the sshd as jump host hop2
	wire   *sshtest.Relay // the sshd as target-wire, for network faults
	config string
	pidNC  string          // where target-nc's ProxyCommand writes its pid
	log    *sshtest.Buffer // what m2m-ssh logs, for assertions and failure output
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{dir: t.TempDir(), log: &sshtest.Buffer{}}
	l.key = sshtest.Keygen(t, l.dir, "id_ed25519", sshtest.KeyOptions{})
	l.sshd = sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{l.key.Public}})
	l.hop1 = sshtest.StartRelay(t, l.sshd.Addr())
	l.hop2 = sshtest.StartRelay(t, l.sshd.Addr())
	l.wire = sshtest.StartRelay(t, l.sshd.Addr())

	var kh []string
	for _, addr := range []string{l.sshd.Addr(), l.hop1.Addr, l.hop2.Addr, l.wire.Addr} {
		for _, k := range l.sshd.HostKeys {
			kh = append(kh, fmt.Sprintf("[127.0.0.1]:%d %s", port(t, addr), k))
		}
	}
	khFile := sshtest.WriteFile(t, l.dir, "known_hosts", kh...)
	l.pidNC = filepath.Join(l.dir, "nc.pid")
	l.config = filepath.Join(l.dir, "ssh_config")
	sshtest.WriteFile(t, l.dir, "ssh_config",
		"Host target-wire",
		fmt.Sprintf("  Port %d", port(t, l.wire.Addr)),
		"Host hop1",
		fmt.Sprintf("  Port %d", port(t, l.hop1.Addr)),
		"Host hop2",
		fmt.Sprintf("  Port %d", port(t, l.hop2.Addr)),
		"Host target-jump1",
		"  ProxyJump hop1",
		"Host target-jump2",
		"  ProxyJump hop1,hop2",
		"Host target-jump-literal",
		fmt.Sprintf("  ProxyJump %s@127.0.0.1:%d", l.sshd.User, port(t, l.hop1.Addr)),
		"Host target-jump-refused",
		fmt.Sprintf("  Port %d", sshtest.FreePort(t)),
		"  ProxyJump hop1",
		"Host target-jump-wire",
		"  ProxyJump hop-wire",
		"Host hop-wire",
		fmt.Sprintf("  Port %d", port(t, l.wire.Addr)),
		"  ConnectTimeout 1",
		"Host target-sshw",
		"  ProxyCommand ssh -F "+l.config+" -W %h:%p hop1",
		"Host target-nc",
		"  ProxyCommand sh -c 'echo $$ > "+l.pidNC+"; exec nc %h %p'",
		"Host target-proxy-fails",
		"  ProxyCommand sh -c 'echo no route to %n >&2; exit 3'",
		"Host *",
		"  HostName 127.0.0.1",
		fmt.Sprintf("  Port %d", l.sshd.Port),
		"  User "+l.sshd.User,
		"  IdentityFile "+l.key.Path,
		"  IdentitiesOnly yes",
		"  IdentityAgent none",
		"  UserKnownHostsFile "+khFile,
		"  GlobalKnownHostsFile none",
		"  StrictHostKeyChecking yes",
		"  BatchMode yes",
		"  LogLevel ERROR",
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("m2m-ssh log:\n%s", l.log)
		}
	})
	return l
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// dialer resolves alias as m2m-ssh would with "-F config -o opts... alias".
func (l *lab) dialer(t *testing.T, alias string, opts ...string) *Dialer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(l.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return testDialer(t, alias, sshcfg.Options{ConfigFile: l.config, Options: opts, Home: l.dir, Logger: logger}, nil)
}

// testDialer is the Dialer m2m-ssh builds for alias under o: the target
// resolved, its identities loaded (with getenv as their environment, an
// empty one when nil), its host keys checked, all of it logged to
// o.Logger.
func testDialer(t *testing.T, alias string, o sshcfg.Options, getenv func(string) string) *Dialer {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	tg, err := sshcfg.Resolve(alias, o)
	if err != nil {
		t.Fatal(err)
	}
	io := agentauth.IdentityOptions{Logger: o.Logger, Getenv: getenv}
	ids, err := agentauth.LoadIdentities(tg, io)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ids.Close() })
	ho := agentauth.HostKeyOptions{Logger: o.Logger}
	hk, err := agentauth.NewHostKeyChecker(tg, ho)
	if err != nil {
		t.Fatal(err)
	}
	return &Dialer{Target: tg, Identities: ids, HostKeys: hk, Config: o, IdentityOptions: io, HostKeyOptions: ho, Logger: o.Logger}
}

// runOn runs command on d's target and returns its stdout and how it ended.
func runOn(t *testing.T, d *Dialer, command string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := SSH(d, Program{Command: command})(ctx)
	if err != nil {
		t.Fatalf("connect to %s: %v", d.Target.Alias, err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read from %s: %v", d.Target.Alias, err)
	}
	return string(out), r.Wait()
}

// startCat starts a remote command that says "up" and then waits, reads
// the "up", and returns the session and what its next Read ends with.
func startCat(t *testing.T, d *Dialer) (Remote, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := SSH(d, Program{Command: "echo up; cat"})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	buf := make([]byte, 3)
	if _, err := r.Read(buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		ended <- err
	}()
	return r, ended
}
