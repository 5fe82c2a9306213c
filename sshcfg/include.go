package sshcfg

import (
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
)

// maxIncludeDepth is ssh's limit on nested Include.
const maxIncludeDepth = 16

// maxFileReads bounds the files one resolution reads. ssh has no such
// limit, but "Include * *" in a file that matches itself would otherwise
// read it 2^16 times.
const maxFileReads = 256

// includeKeyword reads the files an Include names, in place, as ssh does:
// relative paths are taken from ~/.ssh for user files and from the system
// file's directory for system files, globs are expanded and sorted, and a
// pattern that matches nothing is not an error. Files included from an
// inactive block are read, but their Host and Match lines activate nothing.
func (r *resolver) includeKeyword(c *call) error {
	if c.src == nil {
		return errors.New("an Include line is not supported as a command-line option")
	}
	src := c.src
	var errs []error
	for _, arg := range c.args {
		if arg == "" {
			return fmt.Errorf("keyword %s empty argument", c.keyword)
		}
		if strings.HasPrefix(arg, "~") && !src.user {
			return fmt.Errorf("bad include path %s", arg)
		}
		pattern := arg
		if !filepath.IsAbs(arg) && !strings.HasPrefix(arg, "~") {
			dir := r.sysDir
			if src.user {
				dir = filepath.Join(r.home, ".ssh")
			}
			pattern = dir + "/" + arg
		}
		files, err := r.glob(pattern)
		if err != nil {
			return fmt.Errorf("glob failed for %s: %w", pattern, err)
		}
		outer := *src.active
		for _, f := range files {
			if src.depth+1 > maxIncludeDepth {
				return errors.New("too many recursive configuration includes")
			}
			r.reads++
			if r.reads > maxFileReads {
				return fmt.Errorf("more than %d files included, giving up on %s", maxFileReads, f)
			}
			r.checkPerm(f)
			inner := source{
				path:       f,
				user:       src.user,
				neverMatch: src.neverMatch || !outer,
				depth:      src.depth + 1,
				active:     src.active,
			}
			if _, err := r.readFile(inner); err != nil {
				errs = append(errs, fmt.Errorf("cannot read included file: %w", err))
			}
			*src.active = outer
		}
	}
	c.args = nil
	return errors.Join(errs...)
}

// glob expands a pattern as glob(3) with GLOB_TILDE: "~" and "~user"
// first, then wildcards that, unlike filepath.Glob, do not match a
// leading dot; the result is sorted as one list.
func (r *resolver) glob(pattern string) ([]string, error) {
	if strings.HasPrefix(pattern, "~") {
		name, rest, _ := strings.Cut(pattern[1:], "/")
		home := r.home
		if name != "" {
			u, err := user.Lookup(name)
			if err != nil {
				return nil, nil // glob(3) leaves it unexpanded: no match
			}
			home = u.HomeDir
		}
		pattern = strings.TrimSuffix(home, "/") + "/" + rest
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	want := strings.Split(filepath.Clean(pattern), "/")
	kept := matches[:0]
	for _, m := range matches {
		if !hiddenByGlob(strings.Split(m, "/"), want) {
			kept = append(kept, m)
		}
	}
	sort.Strings(kept)
	return kept, nil
}

// hiddenByGlob reports whether a wildcard matched a leading dot, which
// glob(3) does not allow.
func hiddenByGlob(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if strings.HasPrefix(got[i], ".") && !strings.HasPrefix(want[i], ".") && strings.ContainsAny(want[i], `*?[\`) {
			return true
		}
	}
	return false
}
