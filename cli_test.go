package main

import (
	"strings"
	"testing"
)

// runCLI runs the command line in-process with empty stdin.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errs strings.Builder
	code = run(append([]string{"m2m-ssh"}, args...), strings.NewReader(""), &out, &errs)
	return code, out.String(), errs.String()
}

func TestResolveCommand(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string // lines of the output
	}{
		{"alias from -F", []string{"resolve", "-F", "testdata/ssh_config", "buildbox"},
			[]string{"hostname 127.0.0.1", "port 2222", "user alice", "identitiesonly yes"}},
		{"flags win over the config", []string{"resolve", "-F", "testdata/ssh_config", "--port", "2200", "-o", "User=bob", "buildbox"},
			[]string{"hostname 127.0.0.1", "port 2200", "user bob"}},
		{"-J and -A come before -o", []string{"resolve", "-F", "testdata/ssh_config", "-J", "me@hop:2200", "-o", "ProxyJump=other", "-A", "-o", "ForwardAgent=no", "buildbox"},
			[]string{"proxyjump me@hop:2200", "forwardagent yes"}},
		{"user@ in the destination", []string{"resolve", "-F", "testdata/ssh_config", "carol@buildbox"},
			[]string{"user carol"}},
		{"seed mode defaults", []string{"resolve", "--host", "10.0.0.5"},
			[]string{"hostname 10.0.0.5", "port 8022", "user mcp", "identitiesonly yes", "stricthostkeychecking true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCLI(c.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errs)
			}
			lines := strings.Split(out, "\n")
			for _, w := range c.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"exclusive trust flags", []string{"--host", "h", "--known-hosts", "kh", "--disable-host-key-checking"}, "exclude each other"},
		{"alias and --host", []string{"--host", "h", "buildbox"}, "either an ALIAS"},
		{"subsystem and command", []string{"--subsystem", "mcp", "buildbox", "--", "server"}, "either --subsystem or a remote command"},
		{"bad log level", []string{"--log-level", "LOUD", "buildbox"}, "unknown --log-level"},
		{"resolve with two aliases", []string{"resolve", "a", "b"}, "one ALIAS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantUsageError(t, c.args, c.want) })
	}
}

// wantUsageError runs the command line and checks that it fails as a
// usage error: status 2, nothing on stdout, an error containing want and a
// hint on stderr.
func wantUsageError(t *testing.T, args []string, want string) {
	t.Helper()
	code, out, errs := runCLI(args...)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if out != "" {
		t.Errorf("stdout = %q; the protocol's stream must stay clean", out)
	}
	if !strings.Contains(errs, "m2m-ssh: error: ") || !strings.Contains(errs, want) || !strings.Contains(errs, "m2m-ssh: hint: ") {
		t.Errorf("stderr = %q, want an error containing %q and a hint", errs, want)
	}
}
