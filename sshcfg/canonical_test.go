package sshcfg

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDNS answers canonicalization's lookups from tables, in process, and
// records what was asked.
type fakeDNS struct {
	hosts map[string][]string // name (with its trailing dot, as asked) -> addresses
	cname map[string]string
	mu    sync.Mutex
	asked []string
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	f.asked = append(f.asked, host)
	f.mu.Unlock()
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeDNS) LookupCNAME(_ context.Context, host string) (string, error) {
	if c, ok := f.cname[host]; ok {
		return c, nil
	}
	return host, nil
}

func TestCanonicalizeLookups(t *testing.T) {
	dns := func() *fakeDNS {
		return &fakeDNS{
			hosts: map[string][]string{
				"web.b.test.":    {"192.0.2.10"},
				"web.a6.test.":   {"2001:db8::10"},
				"web.c.test.":    {"192.0.2.11"},
				"mail.c.test.":   {"192.0.2.12"},
				"full.b.test.":   {"192.0.2.13"},
				"x.y.b.test.":    {"192.0.2.14"},
				"alias.b.test.":  {"192.0.2.15"},
				"badcn.b.test.":  {"192.0.2.16"},
				"alias.b.test":   {"192.0.2.15"},
				"plainname":      {"192.0.2.17"},
				"edge.cdn.test.": {"192.0.2.18"},
			},
			cname: map[string]string{
				"web.c.test.":   "edge.cdn.test.",
				"mail.c.test.":  "edge.cdn.test.",
				"alias.b.test.": "edge.cdn.test.",
				"badcn.b.test.": "bad_name!.test.",
				"plainname":     "plainname.cdn.test.",
			},
		}
	}
	for _, tc := range []struct {
		name   string
		config string
		alias  string
		want   string // HostName, or the start of the error
		err    bool
		asked  []string // nil: not checked; empty: no lookup at all
	}{
		{"first domain that resolves", "CanonicalizeHostname yes\nCanonicalDomains a.test b.test\n", "web", "web.b.test",
			false, []string{"web.a.test.", "web.b.test."}},
		{"no domains: no lookup", "CanonicalizeHostname yes\n", "web", "web", false, []string{}},
		{"not asked: no lookup", "CanonicalDomains a.test b.test\n", "web", "web", false, []string{}},
		{"anchored name", "CanonicalizeHostname yes\nCanonicalDomains a.test\n", "full.b.test.", "full.b.test", false, []string{"full.b.test."}},
		{"more dots than allowed", "CanonicalizeHostname yes\nCanonicalDomains b.test\nCanonicalizeMaxDots 0\n", "x.y", "x.y", false, []string{}},
		{"dots allowed", "CanonicalizeHostname yes\nCanonicalDomains b.test\nCanonicalizeMaxDots 2\n", "x.y", "x.y.b.test", false, nil},
		{"not found, fallback", "CanonicalizeHostname yes\nCanonicalDomains a.test\n", "nowhere", "nowhere", false, nil},
		{"not found, no fallback", "CanonicalizeHostname yes\nCanonicalDomains a.test z.test\nCanonicalizeFallbackLocal no\n", "nowhere",
			"Could not resolve host \"nowhere\"", true, nil},
		{"proxy: not canonicalized", "CanonicalizeHostname yes\nCanonicalDomains b.test\nProxyCommand nc %h %p\n", "web", "web", false, []string{}},
		{"proxy with always", "CanonicalizeHostname always\nCanonicalDomains b.test\nProxyCommand nc %h %p\n", "web", "web.b.test", false, nil},
		{"jump host: not canonicalized", "CanonicalizeHostname yes\nCanonicalDomains b.test\nProxyJump gw\n", "web", "web", false, []string{}},
		{"address family", "CanonicalizeHostname yes\nCanonicalDomains a6.test b.test\nAddressFamily inet\n", "web", "web.b.test", false, nil},
		{"CNAME followed", "CanonicalizeHostname yes\nCanonicalDomains c.test\nCanonicalizePermittedCNAMEs *.c.test:*.cdn.test\n", "web", "edge.cdn.test", false, nil},
		{"CNAME not permitted", "CanonicalizeHostname yes\nCanonicalDomains c.test\nCanonicalizePermittedCNAMEs mail.*:*.cdn.test\n", "web", "web.c.test", false, nil},
		{"CNAME rule by source", "CanonicalizeHostname yes\nCanonicalDomains c.test\nCanonicalizePermittedCNAMEs mail.*:*.cdn.test\n", "mail", "edge.cdn.test", false, nil},
		{"bad CNAME ignored", "CanonicalizeHostname yes\nCanonicalDomains b.test\nCanonicalizePermittedCNAMEs *:*\n", "badcn", "badcn.b.test", false, nil},
		{"bare name's CNAME", "CanonicalizeHostname yes\nCanonicalizePermittedCNAMEs *:*.cdn.test\n", "plainname", "plainname.cdn.test", false, nil},
		{"bare name's CNAME, not canonicalizing", "CanonicalizePermittedCNAMEs *:*.cdn.test\n", "plainname", "plainname", false, []string{}},
		{"address: no lookup", "CanonicalizeHostname yes\nCanonicalDomains b.test\nHostName 127.1\n", "web", "127.0.0.1", false, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(conf, []byte("Host *\n"+tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			d := dns()
			o := testOptions(conf)
			o.Resolver = d
			tg, err := Resolve(tc.alias, o)
			if tc.err {
				var ce *CanonicalizeError
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a CanonicalizeError starting %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "hostname", tg.HostName, tc.want)
			if tc.asked != nil && !slices.Equal(d.asked, tc.asked) && !(len(tc.asked) == 0 && len(d.asked) == 0) {
				t.Errorf("looked up %q, want %q", d.asked, tc.asked)
			}
		})
	}
}

// TestCanonicalPass checks that the re-read sees the canonical name in
// Host and Match host, and that Match canonical applies only then.
func TestCanonicalPass(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "config")
	text := `Host web.b.test
    Port 2200
Match canonical host web.b.test
    User canon
Match !canonical
    IdentityFile ~/.ssh/first
Host *
    CanonicalizeHostname yes
    CanonicalDomains b.test
`
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(conf)
	o.Resolver = &fakeDNS{hosts: map[string][]string{"web.b.test.": {"192.0.2.10"}}}
	tg, err := Resolve("web", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "hostname", tg.HostName, "web.b.test")
	eq(t, "port from Host web.b.test", tg.Port, 2200)
	eq(t, "user from Match canonical", tg.User, "canon")
	eq(t, "identities", tg.IdentityFiles, []string{testHome + "/.ssh/first"})
	eq(t, "alias", tg.Alias, "web")
}

func TestInetAton(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"}, {"127.1", "127.0.0.1"}, {"127.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"}, {"0x7f000001", "127.0.0.1"}, {"0x7f.1", "127.0.0.1"},
		{"010.0.0.1", "8.0.0.1"}, {"0", "0.0.0.0"}, {"0x", "0.0.0.0"},
		{"256.0.0.1", ""}, {"1.2.3.4.5", ""}, {"08.0.0.1", ""}, {"1..2", ""},
		{"1.2.3.4.", ""}, {"", ""}, {"1.256", "1.0.1.0"}, {"1.16777216", ""},
		{"+1.2.3.4", ""}, {"-1", ""}, {"4294967296", ""}, {"host", ""},
	} {
		got := ""
		if a, ok := inetAton(tc.in); ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("inetAton(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// deadlineDNS checks that every lookup is bounded, and fails it as a
// name server that never answers would once the bound passed.
type deadlineDNS struct{ t *testing.T }

func (d deadlineDNS) LookupHost(ctx context.Context, host string) ([]string, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		d.t.Errorf("lookup of %s has no deadline", host)
	} else if left := time.Until(dl); left > lookupTimeout {
		d.t.Errorf("lookup of %s may take %v, more than %v", host, left, lookupTimeout)
	}
	return nil, context.DeadlineExceeded
}

func (d deadlineDNS) LookupCNAME(ctx context.Context, host string) (string, error) {
	_, err := d.LookupHost(ctx, host)
	return "", err
}

func TestCanonicalizeDeadResolver(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(conf, []byte("Host *\n CanonicalizeHostname yes\n CanonicalDomains a.test b.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions(conf)
	o.Resolver = deadlineDNS{t}
	tg, err := Resolve("web", o)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "hostname falls back to the name as given", tg.HostName, "web")
}
