package secretenv

import (
	"slices"
	"testing"
)

func TestScrub(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"none", nil, []string{}},
		{"keeps others", []string{"HOME=/h", "PATH=/bin"}, []string{"HOME=/h", "PATH=/bin"}},
		{"drops the key", []string{"HOME=/h", "M2M_SSH_KEY=-----BEGIN", "PATH=/bin"}, []string{"HOME=/h", "PATH=/bin"}},
		{"drops the passphrase", []string{"M2M_SSH_PASSPHRASE=hunter2"}, []string{}},
		{"drops an empty value", []string{"M2M_SSH_KEY="}, []string{}},
		{"case folded", []string{"m2m_ssh_passphrase=x", "M2m_Ssh_Key=y"}, []string{}},
		{"value with =", []string{"M2M_SSH_PASSPHRASE=a=b", "X=a=b"}, []string{"X=a=b"}},
		{"prefix is not the name", []string{"M2M_SSH_KEYS=1", "M2M_SSH_KEY_FILE=2", "XM2M_SSH_KEY=3"}, []string{"M2M_SSH_KEYS=1", "M2M_SSH_KEY_FILE=2", "XM2M_SSH_KEY=3"}},
		{"other M2M names kept", []string{"M2M_SSH_LOG=1"}, []string{"M2M_SSH_LOG=1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.in)
			if got := scrub(in); !slices.Equal(got, c.want) {
				t.Fatalf("scrub(%q) = %q, want %q", c.in, got, c.want)
			}
			if !slices.Equal(in, c.in) {
				t.Fatalf("scrub changed its input: %q", in)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv(Key, "secret key text")
	t.Setenv(Passphrase, "secret passphrase")
	t.Setenv("M2M_SECRETENV_TEST", "kept")
	env := Environ()
	if !slices.Contains(env, "M2M_SECRETENV_TEST=kept") {
		t.Fatal("Environ dropped an ordinary variable")
	}
	for _, kv := range env {
		if kv == Key+"=secret key text" || kv == Passphrase+"=secret passphrase" {
			t.Fatalf("Environ kept %q", kv)
		}
	}
}
