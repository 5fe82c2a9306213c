package sshcfg

import (
	"errors"
	"io"
	"log/slog"
	"os/user"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	tok := tokens{'h': "host", 'p': "22"}
	env := func(k string) (string, bool) {
		if k == "SET" {
			return "value", true
		}
		return "", false
	}
	for _, tc := range []struct {
		in     string
		dollar bool
		want   string
		err    bool
	}{
		{"%h:%p", false, "host:22", false},
		{"100%%", false, "100%", false},
		{"%%h", false, "%h", false},
		{"%x", false, "", true},
		{"ends%", false, "", true},
		{"${SET}/%h", true, "value/host", false},
		{"${SET}", false, "${SET}", false},
		{"$SET", true, "$SET", false},
		{"${UNSET}", true, "", true},
		{"${}", true, "", true},
		{"${SET", true, "", true},
	} {
		got, err := tok.expand(tc.in, tc.dollar, env)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("expand(%q, %v) = %q, %v; want %q, error %v", tc.in, tc.dollar, got, err, tc.want, tc.err)
		}
	}
}

func TestTildeExpand(t *testing.T) {
	root, err := user.Lookup("root")
	if err != nil {
		t.Skip("no root user to look up")
	}
	for _, tc := range []struct{ in, want string }{
		{"~", "/h/"},
		{"~/x", "/h/x"},
		{"~x", "/h/x"},
		{"/abs/~", "/abs/~"},
		{"~root/k", root.HomeDir + "/k"},
	} {
		got, err := tildeExpand(tc.in, "/h")
		if err != nil || got != tc.want {
			t.Errorf("tildeExpand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := tildeExpand("~no-such-user-here/x", "/h"); err == nil {
		t.Error("an unknown user expanded")
	}
}

func TestConnectionHash(t *testing.T) {
	// ssh -G -F none -o 'RemoteCommand %C' -l alice example.com on host "vm"
	eq(t, "%C", connectionHash("vm", "real.example.com", "22", "root"), "42d223fd741e46790d516b2e195847e8c79187da")
}

func textLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func TestProxyCommandLine(t *testing.T) {
	cases := []struct {
		command, want string
		opts          []string
		bad           string // the unknown token
	}{
		{command: "nc %h %p", want: "nc 10.1.2.3 2222"},
		{command: "ssh -W %h:%p -l %r jump # for %n", want: "ssh -W 10.1.2.3:2222 -l alice jump # for box"},
		{command: "echo 100%% %k", want: "echo 100% box"},
		{command: "echo %k", opts: []string{"HostKeyAlias=Keyname"}, want: "echo keyname"},
		{command: "echo %d", bad: "%d"},
		{command: "echo 5%", bad: "%"},
	}
	for _, c := range cases {
		opts := append([]string{"HostName=10.1.2.3", "Port=2222", "User=alice", "ProxyCommand=" + c.command}, c.opts...)
		tg, err := Resolve("box", Options{ConfigFile: "none", Options: opts, Home: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tg.ProxyCommandLine()
		var te *TokenError
		switch {
		case c.bad != "" && (!errors.As(err, &te) || te.Token != c.bad):
			t.Errorf("%q: error %v, want the unknown token %s", c.command, err, c.bad)
		case c.bad != "" && c.bad != "%" && !strings.Contains(te.Hint(), "%h %k %n %p %r"):
			t.Errorf("%q: hint %q does not list the tokens", c.command, te.Hint())
		case c.bad == "" && (err != nil || got != c.want):
			t.Errorf("%q: got %q, %v; want %q", c.command, got, err, c.want)
		}
	}
}
