package bridge

import (
	"testing"
)

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
