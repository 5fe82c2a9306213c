package agentauth

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// TestCheckHostIP is check_host_key's address check, on the host key
// callback with the address a connection reached. ssh turns it off for
// loopback addresses, so this runs without a network: a server at
// 192.0.2.7 (TEST-NET-1) is only an address handed to the callback.
func TestCheckHostIP(t *testing.T) {
	key := fixtureKey(t, "host_ed25519").PublicKey()
	other := fixtureKey(t, "other_ed25519").PublicKey()
	line := func(name string, k ssh.PublicKey) string {
		return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 22}
	tests := []struct {
		name    string
		opts    []string // besides CheckHostIP yes
		known   []string
		remote  net.Addr
		wantErr HostKeyProblem // 0: accepted
		// added are the lines the check appends to known_hosts.
		added []string
	}{
		{name: "host known, address new: recorded",
			known: []string{line("box.example", key)}, added: []string{line("192.0.2.7", key)}},
		{name: "host and address known",
			known: []string{line("box.example", key), line("192.0.2.7", key)}},
		{name: "address known with another key: refused",
			known: []string{line("box.example", key), line("192.0.2.7", other)}, wantErr: HostIPKeyChanged},
		{name: "address known with another key, StrictHostKeyChecking no: warned",
			opts:  []string{"StrictHostKeyChecking no"},
			known: []string{line("box.example", key), line("192.0.2.7", other)}},
		{name: "host new, accept-new: host,address recorded",
			opts: []string{"StrictHostKeyChecking accept-new"}, added: []string{line("box.example,192.0.2.7", key)}},
		// ssh's check after the switch: a new host whose address holds
		// another key is refused unless StrictHostKeyChecking is off.
		{name: "host new, address known with another key, accept-new: refused",
			opts:  []string{"StrictHostKeyChecking accept-new"},
			known: []string{line("192.0.2.7", other)}, wantErr: HostIPKeyChanged},
		{name: "host new, address known with another key, StrictHostKeyChecking no: warned",
			opts:  []string{"StrictHostKeyChecking no"},
			known: []string{line("192.0.2.7", other)}},
		{name: "host new, accept-new, hashed: a line each",
			opts: []string{"StrictHostKeyChecking accept-new", "HashKnownHosts yes"}, added: []string{"|1|", "|1|"}},
		{name: "port: [address]:port",
			opts:  []string{"Port 2222"},
			known: []string{line("[box.example]:2222", key)}, remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 2222},
			added: []string{line("[192.0.2.7]:2222", key)}},
		{name: "KnownHostsCommand knows the address: nothing written",
			opts:  []string{"KnownHostsCommand %COMMAND% %I %H"},
			known: []string{line("box.example", key)}},
		{name: "KnownHostsCommand knows another key for the address: refused",
			opts:  []string{"KnownHostsCommand %OTHER% %I %H"},
			known: []string{line("box.example", key)}, wantErr: HostIPKeyChanged},
		{name: "CheckHostIP no",
			opts:  []string{"CheckHostIP no"},
			known: []string{line("box.example", key), line("192.0.2.7", other)}},
		{name: "loopback: not checked",
			known: []string{line("box.example", key), line("127.0.0.1", other)}, remote: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 22}},
		{name: "ProxyCommand: not checked",
			opts:  []string{"ProxyCommand nc %h %p"},
			known: []string{line("box.example", key), line("192.0.2.7", other)}},
		{name: "HostName is the address: not checked",
			opts:  []string{"HostName 192.0.2.7"},
			known: []string{line("192.0.2.7", key)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kh := filepath.Join(dir, "known_hosts")
			if len(tt.known) > 0 {
				sshtest.WriteFile(t, dir, "known_hosts", tt.known...)
			}
			// The command prints a key for the address only when asked
			// for it (%I ADDRESS): the key, or another.
			for i, o := range tt.opts {
				for mark, k := range map[string]ssh.PublicKey{"%COMMAND%": key, "%OTHER%": other} {
					if strings.Contains(o, mark) {
						cmd := writeScript(t, dir, "khc", `[ "$1" = ADDRESS ] && echo "$2 `+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))+`"`, "exit 0")
						tt.opts[i] = strings.ReplaceAll(o, mark, cmd)
					}
				}
			}
			opts := append(append([]string{}, tt.opts...), "CheckHostIP yes", "HostName box.example",
				"UserKnownHostsFile "+kh, "GlobalKnownHostsFile none", "StrictHostKeyChecking yes")
			tgt, err := sshcfg.Resolve("box", sshcfg.Options{ConfigFile: "none", Options: opts, Home: dir,
				LocalUser: "tester", SystemConfig: "/nonexistent", Getenv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatal(err)
			}
			hk, err := NewHostKeyChecker(tgt, HostKeyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			addr := tt.remote
			if addr == nil {
				addr = remote
			}
			err = hk.Callback()("ignored", addr, key)
			var herr *HostKeyError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != 0 && (!errors.As(err, &herr) || herr.Problem != tt.wantErr || herr.Hint() == ""):
				t.Fatalf("check = %v; want problem %d with a hint", err, tt.wantErr)
			}
			data, _ := os.ReadFile(kh)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(data) == 0 {
				lines = nil
			}
			added := lines[min(len(tt.known), len(lines)):]
			if len(added) != len(tt.added) {
				t.Fatalf("added %q; want %q", added, tt.added)
			}
			for i, want := range tt.added {
				if !strings.HasPrefix(added[i], want) {
					t.Errorf("added %q; want %q", added[i], want)
				}
			}
			if slices.Contains(tt.opts, "HashKnownHosts yes") {
				db := &knownHosts{}
				db.read(strings.NewReader(string(data)), kh, &badLines{})
				matched := map[string]bool{}
				for _, l := range db.lines {
					matched["box.example"] = matched["box.example"] || l.matches("box.example")
					matched["192.0.2.7"] = matched["192.0.2.7"] || l.matches("192.0.2.7")
				}
				if !matched["box.example"] || !matched["192.0.2.7"] {
					t.Errorf("hashed lines do not cover both names: %v", matched)
				}
			}
		})
	}
}
