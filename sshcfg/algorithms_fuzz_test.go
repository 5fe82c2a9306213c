package sshcfg

import (
	"slices"
	"strings"
	"testing"
)

// FuzzAlgorithmList feeds arbitrary lists to each algorithm keyword's
// check and assembly. Whatever they make of it must hold what
// kex_assemble_names promises: only known names, none twice, a "-" list
// a subsequence of the default, a "+" list the default then more.
func FuzzAlgorithmList(f *testing.F) {
	for _, s := range []string{
		"+ssh-rsa", "-*cert*", "^ssh-rsa,rsa-sha2-512", "ssh-ed25519*,rsa-sha2-*",
		"aes128-ctr,,aes256-ctr", "+", "-", "^", "!ssh-rsa", "*,!x", "+aes128-cbc,3des-cbc",
		"-umac*,hmac-sha1*", "^diffie-hellman-group14-sha1", "a?*?*?*?*?*?*?*b",
	} {
		for kw := range algorithmLists {
			f.Add(kw, s)
		}
	}
	f.Fuzz(func(t *testing.T, kw, spec string) {
		al := algorithmLists[lower(kw)]
		if al == nil {
			al = algorithmLists["hostkeyalgorithms"]
		}
		al.checkSpec(spec)
		list, err := al.resolve(spec)
		if err != nil {
			return
		}
		names := split(list)
		seen := map[string]bool{}
		for _, n := range names {
			if !slices.Contains(al.all, n) {
				t.Fatalf("%s %q gave unknown name %q", al.keyword, spec, n)
			}
			if seen[n] {
				t.Fatalf("%s %q gave %q twice: %s", al.keyword, spec, n, list)
			}
			seen[n] = true
		}
		def := split(al.def)
		switch {
		case strings.HasPrefix(spec, "-"):
			i := 0
			for _, n := range names {
				for i < len(def) && def[i] != n {
					i++
				}
				if i == len(def) {
					t.Fatalf("%s %q: %s is not a part of the default list in order", al.keyword, spec, list)
				}
			}
		case strings.HasPrefix(spec, "+"):
			if len(names) < len(def) || !slices.Equal(names[:len(def)], def) {
				t.Fatalf("%s %q: %s does not start with the default list", al.keyword, spec, list)
			}
		}
		tg := &Target{specs: map[string]string{al.keyword: spec}}
		for _, n := range tg.Written(al.keyword) {
			if !slices.Contains(al.all, n) {
				t.Fatalf("Written %q gave unknown name %q", spec, n)
			}
		}
	})
}

// split is a list's names; none for "".
func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// FuzzCanonicalAddr feeds arbitrary host names to the address forms
// canonicalization parses: what it makes of one must be its own
// canonical form.
func FuzzCanonicalAddr(f *testing.F) {
	for _, s := range []string{"127.1", "0x7f.0.0.1", "2130706433", "010.0.0.1", "::FFFF:7F00:1",
		"0:0::1", "fe80::1%lo", "1.2.3.4.5", "0x", "host.example", "::1%999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		isAddr(name, "any")
		for _, fam := range []string{"any", "inet", "inet6"} {
			out, ok := canonicalAddr(name, fam)
			if !ok {
				continue
			}
			again, ok := canonicalAddr(out, fam)
			if !ok || again != out {
				t.Fatalf("%q -> %q -> %q, %v", name, out, again, ok)
			}
		}
	})
}
