//go:build unix

package bench

import (
	"fmt"
	"net"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// world is what every benchmark mode runs in: the binaries built from the
// tree, a real sshd on 127.0.0.1, and one ssh config that both clients
// read, with the host "bench" reaching sshd directly.
type world struct {
	dir    string
	bin    map[string]string // m2m-ssh and the MCP servers, by name
	ssh    string
	sshd   *sshtest.SSHD
	key    sshtest.Key
	config string
	env    []string // the clients' environment
	known  string   // the known_hosts file
}

// newWorld builds pkgs (name → package) and starts sshd. via, when set,
// is given sshd's address and names more hosts, each reached at another
// address of this machine (a proxy in front of sshd) with the same keys.
func newWorld(t *testing.T, pkgs map[string]string, via func(sshdAddr string) map[string]string) *world {
	w := &world{dir: t.TempDir(), bin: map[string]string{}}
	for name, pkg := range pkgs {
		p, err := sshtest.Build(w.dir, pkg, name)
		if err != nil {
			t.Fatal(err)
		}
		w.bin[name] = p
	}
	w.ssh = sshtest.LookPath(t, "ssh")
	w.key = sshtest.Keygen(t, w.dir, "id_ed25519", sshtest.KeyOptions{})
	w.sshd = sshtest.StartSSHD(t, sshtest.SSHDConfig{AuthorizedKeys: []string{w.key.Public}})
	known := w.sshd.KnownHosts()
	hosts := []string{"bench", w.sshd.Addr()}
	var more map[string]string
	if via != nil {
		more = via(w.sshd.Addr())
	}
	for name, addr := range more {
		for _, k := range w.sshd.HostKeys {
			known = append(known, fmt.Sprintf("[%s]:%s %s", hostOf(addr), portOf(addr), k))
		}
		hosts = append(hosts, name, addr)
	}
	w.known = sshtest.WriteFile(t, w.dir, "known_hosts", known...)
	var lines []string
	for i := 0; i < len(hosts); i += 2 {
		lines = append(lines,
			"Host "+hosts[i],
			"  HostName "+hostOf(hosts[i+1]),
			"  Port "+portOf(hosts[i+1]),
			"  User "+w.sshd.User,
			"  IdentityFile "+w.key.Path,
			"  IdentitiesOnly yes",
			"  IdentityAgent none",
			"  UserKnownHostsFile "+w.known,
			"  StrictHostKeyChecking yes",
			"  BatchMode yes",
		)
	}
	w.config = sshtest.WriteFile(t, w.dir, "ssh_config", lines...)
	w.env = []string{"HOME=" + w.dir, "PATH=/usr/bin:/bin"}
	return w
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
