package sshcfg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// A line is one configuration line split as OpenSSH's process_config_line
// splits it: a lowercase keyword and the raw rest of the line.
type line struct {
	file    string
	num     int
	keyword string
	// rest is everything after the keyword and its separator (blanks, one
	// "="), trailing blanks removed, comments and quotes left in: ssh takes
	// ProxyCommand, ProxyJump, RemoteCommand and Match from it verbatim and
	// splits it with argv_split for every other keyword.
	rest string
}

// neutralKey stands in for Host, Match and Include when a line is handed
// to ssh_config: the library acts on those three keywords (it globs
// Include against the real home directory, compiles Host patterns with
// its own rules and refuses Match exec), and we want only its lexing.
const neutralKey = "m2m-ssh-neutral"

// maxLineLen bounds a line. ssh has no limit, but the library's lexer
// takes time quadratic in the length of a line, and no real setting
// needs this much.
const maxLineLen = 8 << 10

// lexLine splits one line of a configuration file. It returns ok false for
// blank and comment lines.
//
// github.com/kevinburke/ssh_config lexes the line: it finds the keyword,
// the "=" or blanks after it, and tells comment lines from settings. The
// value is then re-read from the line itself, because the library's value
// is not OpenSSH's: it ends the value at any "#" (OpenSSH only at the
// start of a word, so "key#1" is a file name), strips quotes only around
// the whole value, and its String method re-inserts blanks. Splitting the
// file into lines ourselves, rather than decoding it whole, keeps one line
// the library cannot handle from failing the others.
func lexLine(text string) (keyword, rest string, ok bool, err error) {
	// OpenSSH reads C strings and strips trailing blanks, including CR
	// and form feed, before looking at the line.
	if i := strings.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	text = strings.TrimRight(text, " \t\r\n\f")
	word := firstWord(text)
	if word == "" {
		return "", "", false, nil
	}
	if len(text) > maxLineLen {
		return lower(word), "", false, fmt.Errorf("line is longer than %d bytes", maxLineLen)
	}
	fed := text
	switch lower(word) {
	case "host", "match", "include":
		i := strings.Index(text, word)
		fed = text[:i] + neutralKey + text[i+len(word):]
	}
	cfg, err := ssh_config.DecodeBytes([]byte(fed))
	if err != nil {
		return "", "", false, err
	}
	var kv *ssh_config.KV
	for _, h := range cfg.Hosts {
		for _, n := range h.Nodes {
			if k, isKV := n.(*ssh_config.KV); isKV {
				kv = k
			}
		}
	}
	if kv == nil {
		return "", "", false, nil // blank or comment
	}
	start := kv.Pos().Col - 1
	if kv.Key == neutralKey {
		kv.Key = word
	}
	if start < 0 || start+len(kv.Key) > len(text) || text[start:start+len(kv.Key)] != kv.Key {
		return "", "", false, errors.New("cannot find the keyword")
	}
	if strings.HasPrefix(kv.Key, "#") {
		return "", "", false, nil
	}
	return lower(kv.Key), afterKeyword(text[start+len(kv.Key):]), true, nil
}

// firstWord is the keyword as OpenSSH's strdelim finds it: after leading
// blanks, up to a blank or "=".
func firstWord(s string) string {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t="); i >= 0 {
		return s[:i]
	}
	return s
}

// afterKeyword skips the separator between keyword and value as strdelim
// does: blanks, at most one "=", blanks.
func afterKeyword(s string) string {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t")
	}
	return s
}

var errQuotes = errors.New("invalid quotes")

// splitArgs is OpenSSH's argv_split with comments: words separated by
// blanks, single and double quotes group, a backslash escapes a quote, a
// backslash or (outside quotes) a blank, and a "#" that starts a word ends
// the line.
func splitArgs(s string) ([]string, error) { return splitWords(s, true) }

// splitWords is argv_split; comments says whether a word starting with
// '#' ends the line (a config line) or is a word (a command).
func splitWords(s string, comments bool) ([]string, error) {
	var args []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if comments && s[i] == '#' {
			break
		}
		var arg strings.Builder
		var quote byte
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"' || s[i+1] == '\\' || (quote == 0 && s[i+1] == ' ')):
				i++
				arg.WriteByte(s[i])
				continue
			case quote == 0 && (c == ' ' || c == '\t'):
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			default:
				arg.WriteByte(c)
				continue
			}
			break
		}
		if quote != 0 {
			return nil, errQuotes
		}
		args = append(args, arg.String())
	}
	return args, nil
}

// nextWord is OpenSSH's strdelim, which Match still uses: the next word
// split at blanks or one "=", where a leading double quote runs to the
// next double quote. ok is false at the end of s or on an unclosed quote.
func nextWord(s string) (word, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	i := strings.IndexAny(s, " \t\r\n\"=")
	if i < 0 {
		return s, "", true
	}
	if s[i] == '"' {
		// strdelim drops the quote and ends the word at the next one,
		// whatever came before it.
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return "", "", false
		}
		word = s[:i] + s[i+1:i+1+j]
		return word, strings.TrimLeft(s[i+2+j:], " \t\r\n"), true
	}
	word, rest = s[:i], s[i+1:]
	equals := s[i] == '='
	rest = strings.TrimLeft(rest, " \t\r\n")
	if !equals && strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t\r\n")
	}
	return word, rest, true
}
