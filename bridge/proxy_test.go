package bridge

import (
	"errors"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

func TestExpandProxyCommand(t *testing.T) {
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
		tg, err := sshcfg.Resolve("box", sshcfg.Options{ConfigFile: "none", Options: opts, Home: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		got, err := expandProxyCommand(tg)
		var te *TokenError
		switch {
		case c.bad != "" && (!errors.As(err, &te) || te.Token != c.bad):
			t.Errorf("%q: error %v, want the unknown token %s", c.command, err, c.bad)
		case c.bad == "" && (err != nil || got != c.want):
			t.Errorf("%q: got %q, %v; want %q", c.command, got, err, c.want)
		}
	}
}

func TestParseJumpHost(t *testing.T) {
	cases := []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{in: "bastion", host: "bastion"},
		{in: "me@bastion:2222", user: "me", host: "bastion", port: 2222},
		{in: "me@[127.0.0.1]:22", user: "me", host: "127.0.0.1", port: 22},
		{in: "[::1]:2200", host: "::1", port: 2200},
		{in: "a@b@host", user: "a@b", host: "host"},
		{in: "host:0", bad: true},
		{in: "host:x", bad: true},
		{in: "[::1", bad: true},
		{in: "me@", bad: true},
	}
	for _, c := range cases {
		u, h, p, err := parseJumpHost(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: parsed as %q %q %d", c.in, u, h, p)
			}
			continue
		}
		if err != nil || u != c.user || h != c.host || p != c.port {
			t.Errorf("%q: got %q %q %d %v", c.in, u, h, p, err)
		}
	}
}
