package sshcfg

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestWriteConfig pins the ssh -G format without needing ssh; the
// differential test checks the same output against ssh itself.
func TestWriteConfig(t *testing.T) {
	for _, tc := range []struct{ alias, golden string }{
		{"web-1", "web-1.golden"},
		{"legacy", "legacy.golden"},
		{"nothing", "defaults.golden"},
	} {
		t.Run(tc.alias, func(t *testing.T) {
			t.Parallel()
			o := testOptions(fixture("basic.conf"))
			if tc.alias == "nothing" {
				o.ConfigFile = "none"
			}
			tg, err := Resolve(tc.alias, o)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := tg.WriteConfig(&got); err != nil {
				t.Fatal(err)
			}
			path := fixture(tc.golden)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("got:\n%s\nwant:\n%s", got.Bytes(), want)
			}
		})
	}
}
