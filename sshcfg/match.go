package sshcfg

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
)

// hostLine applies a Host line: active when one pattern matches and no
// negated one does.
func hostLine(host string, patterns []string) bool {
	active := false
	for _, p := range patterns {
		negated := strings.HasPrefix(p, "!")
		if negated {
			p = p[1:]
		}
		if MatchPattern(host, p) {
			if negated {
				return false
			}
			active = true
		}
	}
	return active
}

// matchLine evaluates the criteria of a Match line as match_cfg_line does.
// It reads the words with strdelim, not argv_split, as ssh 9 still does.
func (r *resolver) matchLine(ln *line) (bool, error) {
	host := r.host
	if h, ok := r.cfg.str["hostname"]; ok {
		host = h
		if !r.final {
			// ssh matches a HostName set earlier, with its %h expanded.
			x, err := (tokens{'h': r.host}).expand(h, false, nil)
			if err != nil {
				return false, fmt.Errorf("hostname: %w", err)
			}
			host = x
		}
	}
	ruser := r.localUser
	if u, ok := r.cfg.str["user"]; ok {
		ruser = u
	}
	result, attributes := true, 0
	rest := ln.rest
	for {
		attr, next, ok := nextWord(rest)
		if !ok || attr == "" || strings.HasPrefix(attr, "#") {
			break
		}
		rest = next
		negate := strings.HasPrefix(attr, "!")
		name := lower(strings.TrimPrefix(attr, "!"))
		if name == "all" {
			if arg, _, ok := nextWord(rest); attributes > 1 || (ok && arg != "" && !strings.HasPrefix(arg, "#")) {
				return false, fmt.Errorf("%q cannot be combined with other Match attributes", attr)
			}
			return result && !negate, nil
		}
		attributes++
		if name == "canonical" || name == "final" {
			if name == "final" {
				r.wantFinal = true
			}
			if r.final == negate {
				result = false
			}
			continue
		}
		arg, next, ok := nextWord(rest)
		if !ok || arg == "" || strings.HasPrefix(arg, "#") {
			return false, fmt.Errorf("missing Match criteria for %s", attr)
		}
		rest = next
		var hit bool
		switch name {
		case "host":
			hit = MatchHost(host, arg)
		case "originalhost":
			hit = MatchHost(r.alias, arg)
		case "user":
			hit = matchPatternList(ruser, arg, false) == 1
		case "localuser":
			hit = matchPatternList(r.localUser, arg, false) == 1
		case "exec":
			if !result {
				continue // ssh skips the command once the line cannot match
			}
			var err error
			if hit, err = r.matchExec(arg, host, ruser); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("unsupported Match attribute %s", attr)
		}
		if hit == negate {
			result = false
		}
	}
	if attributes == 0 {
		return false, errors.New("one or more attributes required for Match")
	}
	return result, nil
}

// execTimeout bounds a Match exec command; ssh waits forever, but a
// connector started by an MCP host must not hang on a stuck command.
var execTimeout = 5 * time.Second

// matchExec expands the tokens of a Match exec command and runs it.
func (r *resolver) matchExec(command, host, ruser string) (bool, error) {
	port := strconv.Itoa(defaultPort)
	if p, ok := r.cfg.str["port"]; ok {
		port = p
	}
	alias := host
	if a, ok := r.cfg.str["hostkeyalias"]; ok {
		alias = a
	}
	t := r.connTokens(host, port, ruser, alias, "").only("CLdhklnpriu")
	cmd, err := t.expand(command, false, nil)
	if err != nil {
		return false, fmt.Errorf("match exec: %w", err)
	}
	if r.opts.Exec != nil {
		return r.opts.Exec(cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	shell, ok := r.getenv("SHELL")
	if !ok || shell == "" {
		shell = "/bin/sh"
	}
	c := exec.CommandContext(ctx, shell, "-c", cmd)
	c.Env = secretenv.Environ()
	killGroup(c)
	c.WaitDelay = time.Second
	err = c.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return false, fmt.Errorf("match exec %q: no answer within %s", cmd, execTimeout)
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.Exited():
		return false, nil
	default:
		return false, fmt.Errorf("match exec %q: %w", cmd, err)
	}
}
