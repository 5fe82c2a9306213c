package sshcfg

import (
	"strings"
	"testing"
	"time"
)

// One table for every user of match_pattern: Host lines, known_hosts
// host fields, algorithm lists and SendEnv names.
func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		s, pattern string
		want       bool
	}{
		{"web-1", "web-?", true},
		{"web-", "web-?", false},
		{"web-12", "web-?", false},
		{"db01", "db??", true},
		{"anything", "*", true},
		{"", "*", true},
		{"a.example.com", "*.example.com", true},
		{"example.com", "*.example.com", false},
		{"abcbd", "a*b?", true},
		{"abc", "a*b?", true},
		{"ab", "a*b?", false},
		{"Foo", "foo", false},
		{strings.Repeat("a", 60) + "c", "a?*?*?*?*?*?*?*?*?*?*?*?*?*?*b", false},
		// known_hosts: the whole "[host]:port" string is matched.
		{"[a.example]:22", "*.example", false},
		{"[a.example]:2222", "[*.example]:*", true},
		{"10.0.0.13", "10.0.0.1?", true},
		{"10.0.0.130", "10.0.0.1?", false},
		{"aaa", "a*a*a*a", false},
		// SendEnv names.
		{"LC_ALL", "LC_*", true},
		{"LANG", "LC_*", false},
		{"M2M_A", "M2M_?", true},
		{"M2M_AB", "M2M_?", false},
		{"AxxBxxC", "A*B*C", true},
		{"AxxBxx", "A*B*C", false},
		{"EXACTLY", "EXACT", false},
		{"a", "[ab]", false}, // brackets are literal, as in ssh
	} {
		if got := MatchPattern(tc.s, tc.pattern); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tc.s, tc.pattern, got, tc.want)
		}
	}
}

// A pattern built to make a backtracking matcher exponential (ssh's
// recursive match_pattern, or the copy SendEnv once had, took 1.7 s on
// it) costs the single-backtrack matcher microseconds. The bound is a
// hang guard three orders of magnitude above that, not a speed target.
func TestMatchPatternAdversarial(t *testing.T) {
	name := strings.Repeat("A", 40)
	pattern := "*A*A*A*A*A*A*A*A*B"
	start := time.Now()
	for range 1000 {
		if MatchPattern(name, pattern) {
			t.Fatal("matched a name with no B")
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("1000 matches took %s", took)
	}
}

func TestMatchPatternList(t *testing.T) {
	for _, tc := range []struct {
		s, list string
		fold    bool
		want    int
	}{
		{"b", "a,b,c", false, 1},
		{"d", "a,b,c", false, 0},
		{"b", "*,!b", false, -1},
		{"b", "!b,*", false, -1},
		{"x", "*,!b", false, 1},
		{"host", "HOST", true, 1},
		{"host", "HOST", false, 0},
		{"x", strings.Repeat("x", maxSubpattern), false, 0},
	} {
		if got := matchPatternList(tc.s, tc.list, tc.fold); got != tc.want {
			t.Errorf("matchPatternList(%q, %q) = %d, want %d", tc.s, tc.list, got, tc.want)
		}
	}
}

func TestMatchHost(t *testing.T) {
	for _, tc := range []struct {
		host, list string
		want       bool
	}{
		{"Web.Example", "*.example", true},
		{"web.example", "*.EXAMPLE", true},
		{"web.example", "*.example,!web.example", false},
		{"[web.example]:2222", "[*.example]:*", true},
		{"web.example", "", false},
		{"web.example", strings.Repeat("w", maxSubpattern) + ",*", false}, // an over-long element fails the list, as in ssh
	} {
		if got := MatchHost(tc.host, tc.list); got != tc.want {
			t.Errorf("MatchHost(%q, %q) = %v, want %v", tc.host, tc.list, got, tc.want)
		}
	}
}
