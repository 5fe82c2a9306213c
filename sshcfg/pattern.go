package sshcfg

import "strings"

// This file is the one home of OpenSSH's pattern matching (match.c):
// sshcfg, agentauth (known_hosts, algorithm lists) and bridge (SendEnv)
// all match through it.

// MatchPattern is OpenSSH's match_pattern: "*" matches any run of
// characters, "?" exactly one, everything else itself, case-sensitively.
// It backtracks only to the last star, so hostile patterns stay linear-ish
// where ssh's recursive version is exponential.
func MatchPattern(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			si++
			pi++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// maxSubpattern mirrors the 1024-byte buffer of match_pattern_list: a
// longer element never matches.
const maxSubpattern = 1023

// matchPatternList is OpenSSH's match_pattern_list: a comma-separated list
// of patterns, "!" negating one. It returns 1 for a match, -1 when a
// negated pattern matched and 0 otherwise. With fold, the patterns are
// lowercased (callers lowercase s themselves).
func matchPatternList(s, list string, fold bool) int {
	positive := false
	for _, sub := range strings.Split(list, ",") {
		negated := strings.HasPrefix(sub, "!")
		if negated {
			sub = sub[1:]
		}
		if len(sub) >= maxSubpattern {
			return 0
		}
		if fold {
			sub = lower(sub)
		}
		if MatchPattern(s, sub) {
			if negated {
				return -1
			}
			positive = true
		}
	}
	if positive {
		return 1
	}
	return 0
}

// MatchHost is OpenSSH's match_hostname: whether host matches the pattern
// list (a negated pattern vetoes it), case-insensitively on both sides. It
// is how Host lines' originalhost/host criteria and known_hosts host
// fields are matched.
func MatchHost(host, list string) bool {
	return matchPatternList(lower(host), list, true) == 1
}
