package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Usage errors of the Python client's flags and the key server's.
func TestSeedUsageErrors(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"key server and known_hosts", []string{"--host", "h", "--use-key-server", "--known-hosts", "kh"}, "exclude each other"},
		{"key server and no checking", []string{"--host", "h", "--use-key-server", "--disable-host-key-checking"}, "exclude each other"},
		{"all three", []string{"--host", "h", "--use-key-server", "--known-hosts", "kh", "--disable-host-key-checking"}, "exclude each other"},
		{"key server with an alias", []string{"--use-key-server", "buildbox"}, "takes --host, not an ALIAS"},
		{"key server CA alone", []string{"--host", "h", "--key-server-ca", notPEM}, "--key-server-ca needs --use-key-server"},
		{"insecure HTTP alone", []string{"--host", "h", "--key-server-insecure-http"}, "--key-server-insecure-http needs --use-key-server"},
		{"key server port alone", []string{"--host", "h", "--key-server-port", "9000"}, "--key-server-port needs --use-key-server"},
		{"CA file missing", []string{"--host", "h", "--use-key-server", "--key-server-ca", notPEM + ".missing"}, "--key-server-ca: open"},
		{"CA file not PEM", []string{"--host", "h", "--use-key-server", "--key-server-ca", notPEM}, "no PEM certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantUsageError(t, c.args, c.want)
		})
	}
}

// With --use-key-server the connection trusts only m2m-ssh's own pinned
// known_hosts file, whatever --known-hosts' default says.
func TestResolveKeyServer(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	code, out, errs := runCLI("resolve", "--host", "10.0.0.5", "--use-key-server")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	pin := filepath.Join(home, ".config", "m2m-ssh", "known_hosts")
	for _, want := range []string{"userknownhostsfile " + pin + "\n", "globalknownhostsfile none\n", "stricthostkeychecking true\n", "port 8022\n", "user mcp\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
