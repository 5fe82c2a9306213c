package sshcfg

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testHome = "/home/tester"

// testOptions gives a resolution that depends on nothing of the machine
// it runs on: a fixed home and user, no system file, no environment and
// no commands.
func testOptions(configFile string, opts ...string) Options {
	return Options{
		ConfigFile:   configFile,
		Options:      opts,
		Home:         testHome,
		LocalUser:    "tester",
		SystemConfig: "/nonexistent/ssh_config",
		Getenv:       func(string) (string, bool) { return "", false },
		Exec:         func(string) (bool, error) { return false, nil },
		// No test looks a name up outside the process.
		Resolver: &fakeDNS{},
	}
}

func fixture(name string) string {
	return filepath.Join("testdata", "unit", name)
}

func TestResolveDefaults(t *testing.T) {
	tg, err := Resolve("plain", testOptions("none"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Target{
		Alias:    "plain",
		HostName: "plain",
		Port:     22,
		User:     "tester",
		IdentityFiles: []string{
			testHome + "/.ssh/id_rsa", testHome + "/.ssh/id_ecdsa",
			testHome + "/.ssh/id_ecdsa_sk", testHome + "/.ssh/id_ed25519",
			testHome + "/.ssh/id_ed25519_sk", testHome + "/.ssh/id_xmss",
			testHome + "/.ssh/id_dsa",
		},
		UserKnownHostsFiles:   []string{testHome + "/.ssh/known_hosts", testHome + "/.ssh/known_hosts2"},
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"},
		StrictHostKeyChecking: "ask",
		HostKeyAlgorithms:     defaultHostKeyAlgorithms,
		Ciphers:               defaultCiphers,
		MACs:                  defaultMACs,
		KexAlgorithms:         defaultKex,
		CASignatureAlgorithms: defaultCASignatureAlgorithms,
		AddressFamily:         "any",
		ConnectionAttempts:    1,
		CanonicalizeHostname:  "no",
		CanonicalizeMaxDots:   1,
		// ssh's default: an unqualified name is used as given.
		CanonicalizeFallbackLocal: true,
		ServerAliveCountMax:       3,
		LogLevel:                  "INFO",

		PubkeyAuthentication:         true,
		PasswordAuthentication:       true,
		KbdInteractiveAuthentication: true,
		NumberOfPasswordPrompts:      3,
		pubkeyShown:                  "true",
	}
	want.PubkeyAcceptedAlgorithms = defaultHostKeyAlgorithms
	want.HostbasedAcceptedAlgorithms = defaultHostKeyAlgorithms
	tg.explicit, tg.shown, tg.trace, tg.specs = nil, shown{}, Trace{}, nil
	tg.connTokens, tg.getenv = nil, nil
	if !reflect.DeepEqual(tg, want) {
		t.Errorf("got  %+v\nwant %+v", tg, want)
	}
}

func TestResolve(t *testing.T) {
	basic := fixture("basic.conf")
	for _, tc := range []struct {
		name  string
		alias string
		file  string
		opts  []string
		check func(t *testing.T, tg *Target)
	}{
		{"host block", "buildbox", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "addr", tg.Addr(), "10.0.0.5:2222")
			eq(t, "user", tg.User, "deploy")
			eq(t, "identities", tg.IdentityFiles, []string{testHome + "/.ssh/buildbox_ed25519", testHome + "/.ssh/id_10.0.0.5_deploy"})
			eq(t, "identitiesonly", tg.IdentitiesOnly, true)
			eq(t, "strict", tg.StrictHostKeyChecking, "no")
			eq(t, "known hosts", tg.UserKnownHostsFiles, []string{testHome + "/.ssh/kh_10.0.0.5", "/etc/ssh/extra_known_hosts"})
			eq(t, "known hosts name", tg.KnownHostsName(), "[10.0.0.5]:2222")
		}},
		{"question mark is one character", "web-1", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "hostname", tg.HostName, "web-1.internal.example.com")
			eq(t, "jump", tg.ProxyJump, "bastion@jump.example.com:2200")
			eq(t, "forward agent", tg.ForwardAgent, true)
			eq(t, "keepalive", tg.ServerAliveInterval, time.Minute)
			eq(t, "keepalive count", tg.ServerAliveCountMax, 5)
			eq(t, "timeout", tg.ConnectTimeout, 10*time.Second)
			eq(t, "remote command", tg.RemoteCommand, "exec mcp-server --port 22")
			eq(t, "host key alias", tg.HostKeyAlias, "web-cluster")
			eq(t, "known hosts name: an alias gets no port, as in OpenSSH", tg.KnownHostsName(), "web-cluster")
			eq(t, "user from Host *", tg.User, "fallback")
			eq(t, "strict from Host *", tg.StrictHostKeyChecking, "accept-new")
		}},
		{"host key alias takes no port", "web-1", basic, []string{"Port=2222"}, func(t *testing.T, tg *Target) {
			eq(t, "known hosts name", tg.KnownHostsName(), "web-cluster")
		}},
		{"host name is lower-cased for known_hosts", "Buildbox-Upper", basic, []string{"Port=2222"}, func(t *testing.T, tg *Target) {
			eq(t, "known hosts name", tg.KnownHostsName(), "[buildbox-upper]:2222")
		}},
		{"question mark never matches nothing", "web-", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "hostname", tg.HostName, "web-")
			eq(t, "set", tg.Set("proxyjump"), false)
		}},
		{"proxy command and agent", "legacy", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "proxy command", tg.ProxyCommand, "ssh -W %h:%p gateway")
			eq(t, "agent", tg.IdentityAgent, "none")
			eq(t, "global", tg.GlobalKnownHostsFiles, []string{"/opt/known_hosts"})
		}},
		{"-o comes first", "buildbox", basic, []string{"Port=2200", "User other", "StrictHostKeyChecking yes"}, func(t *testing.T, tg *Target) {
			eq(t, "port", tg.Port, 2200)
			eq(t, "user", tg.User, "other")
			eq(t, "strict", tg.StrictHostKeyChecking, "yes")
			eq(t, "set", tg.Set("Port"), true)
		}},
		{"user@host", "alice@buildbox", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "alias", tg.Alias, "buildbox")
			eq(t, "user", tg.User, "alice")
			eq(t, "identity uses %r", tg.IdentityFiles[1], testHome+"/.ssh/id_10.0.0.5_alice")
		}},
		{"-o User beats user@host", "alice@buildbox", basic, []string{"User=bob"}, func(t *testing.T, tg *Target) {
			eq(t, "user", tg.User, "bob")
		}},
		{"ssh URI", "ssh://carol@buildbox:2022", basic, nil, func(t *testing.T, tg *Target) {
			eq(t, "user", tg.User, "carol")
			eq(t, "port", tg.Port, 2022)
			eq(t, "hostname", tg.HostName, "10.0.0.5")
		}},
		{"CRLF, Key=Value and quotes", "crlf", fixture("crlf.conf"), nil, func(t *testing.T, tg *Target) {
			eq(t, "hostname", tg.HostName, "crlf.example.com")
			eq(t, "port", tg.Port, 2022)
			eq(t, "user", tg.User, "quoted user")
		}},
		{"# inside a word is not a comment", "hash", fixture("quirks.conf"), nil, func(t *testing.T, tg *Target) {
			eq(t, "identity", tg.IdentityFiles, []string{testHome + "/.ssh/key#1"})
			eq(t, "remote command keeps quotes", tg.RemoteCommand, `echo "a b"  'c'`)
		}},
		{"quoted path", "quoted", fixture("quirks.conf"), nil, func(t *testing.T, tg *Target) {
			eq(t, "identity", tg.IdentityFiles, []string{"/keys/with space"})
		}},
		{"quoted Host pattern", "q2", fixture("quirks.conf"), nil, func(t *testing.T, tg *Target) {
			eq(t, "user", tg.User, "q2user")
		}},
		{"nothing set", "elsewhere", "none", nil, func(t *testing.T, tg *Target) {
			for _, kw := range []string{"port", "user", "identityfile", "serveraliveinterval", "connecttimeout", "stricthostkeychecking"} {
				eq(t, "set "+kw, tg.Set(kw), false)
			}
			eq(t, "connect timeout", tg.ConnectTimeout, time.Duration(0))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg, err := Resolve(tc.alias, testOptions(tc.file, tc.opts...))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tg)
		})
	}
}

func TestResolveErrors(t *testing.T) {
	for _, tc := range []struct {
		name, alias, file string
		opts              []string
		want              string
	}{
		{"missing -F file", "x", "/nonexistent/config", nil, "cannot read config file /nonexistent/config"},
		{"bad -o", "x", "none", []string{"Port=none"}, "-o"},
		{"Host in -o", "x", "none", []string{"Host x"}, "-o"},
		{"empty user", "@x", "none", nil, "destination"},
		{"unknown token", "x", "none", []string{"RemoteCommand echo %Z"}, "RemoteCommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Resolve(tc.alias, testOptions(tc.file, tc.opts...))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one starting %q", err, tc.want)
			}
		})
	}
}

// TestWarnings checks that a line sshcfg cannot honour is reported with
// its file and line and that the rest of the file still applies.
func TestWarnings(t *testing.T) {
	var logs bytes.Buffer
	o := testOptions(fixture("warnings.conf"))
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	tg, err := Resolve("box", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "user after bad lines", tg.User, "afterwards")
	eq(t, "port after bad lines", tg.Port, 2200)
	for _, want := range []string{
		`line=2`, // UnknownThing
		`line=3`, // Port with a bad value
		`line=4`, // Match with an unsupported criterion
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("warnings lack %q:\n%s", want, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "warnings.conf") {
		t.Errorf("warnings do not name the file at WARN:\n%s", logs.String())
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

func TestTrace(t *testing.T) {
	cases := []struct {
		alias  string
		blocks []string
	}{
		{"buildbox", []string{fixture("basic.conf") + ":2: Host buildbox", fixture("basic.conf") + ":27: Host *"}},
		{"web-1", []string{fixture("basic.conf") + ":12: Host web-?", fixture("basic.conf") + ":27: Host *", fixture("basic.conf") + ":31: Host web-?"}},
		{"other", []string{fixture("basic.conf") + ":27: Host *"}},
	}
	for _, c := range cases {
		t.Run(c.alias, func(t *testing.T) {
			tg, err := Resolve(c.alias, testOptions(fixture("basic.conf")))
			if err != nil {
				t.Fatal(err)
			}
			tr := tg.Trace()
			if !reflect.DeepEqual(tr.Files, []string{fixture("basic.conf")}) {
				t.Errorf("files = %q", tr.Files)
			}
			if !reflect.DeepEqual(tr.Blocks, c.blocks) {
				t.Errorf("blocks = %q, want %q", tr.Blocks, c.blocks)
			}
		})
	}
}
