package agentauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// authServer is an in-process x/crypto server that records the methods a
// client tries, for fast tests of the order and counts; the real sshd
// tests are in e2e_login_test.go.
type authServer struct {
	addr string
	mu   sync.Mutex
	seen []string // "publickey", "password:<answer>", "keyboard-interactive:<answers>"
}

func (s *authServer) note(m string) {
	s.mu.Lock()
	s.seen = append(s.seen, m)
	s.mu.Unlock()
}

func (s *authServer) tried() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// startAuthServer serves cfg (its host key added) on 127.0.0.1.
func startAuthServer(t *testing.T, build func(s *authServer) *ssh.ServerConfig) *authServer {
	t.Helper()
	s := &authServer{}
	cfg := build(s)
	_, hk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ssh.NewSignerFromKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AddHostKey(hs)
	cfg.MaxAuthTries = 50
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s.addr = l.Addr().String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no channels")
				}
			}()
		}
	}()
	return s
}

// passwordIs accepts one password and records every one tried.
func passwordIs(s *authServer, want string) func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
	return func(_ ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
		s.note("password:" + string(p))
		if string(p) == want {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}
}

// qa is a keyboard-interactive question and the answer it wants.
type qa struct{ q, a string }

// kbdint asks rounds of questions and wants every answer right.
func kbdint(s *authServer, rounds ...[]qa) func(ssh.ConnMetadata, ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
	return func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		var got []string
		ok := true
		for i, round := range rounds {
			var qs []string
			for _, x := range round {
				qs = append(qs, x.q)
			}
			answers, err := ask(fmt.Sprintf("round %d", i+1), "answer each", qs, make([]bool, len(qs)))
			if err != nil {
				return nil, err
			}
			for j, a := range answers {
				ok = ok && a == round[j].a
			}
			got = append(got, answers...)
		}
		s.note("keyboard-interactive:" + strings.Join(got, ","))
		if ok {
			return nil, nil
		}
		return nil, errors.New("wrong answers")
	}
}

func refuseKeys(s *authServer) func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
	return func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
		s.note("publickey")
		return nil, errors.New("no key is good")
	}
}

// askpassScript writes an askpass program that appends its prompt to
// dir/prompts and SSH_ASKPASS_PROMPT to dir/env, then prints the line of
// dir/answers whose number is the number of prompts so far.
func askpassScript(t *testing.T, dir string, answers ...string) string {
	t.Helper()
	sshtest.WriteFile(t, dir, "answers", answers...)
	return writeScript(t, dir, "askpass",
		`printf '%s\n' "$1" >> `+dir+`/prompts`,
		`echo "prompt=${SSH_ASKPASS_PROMPT-unset} secret=${M2M_SSH_PASSPHRASE-unset}" >> `+dir+`/env`,
		`n=$(wc -l < `+dir+`/prompts)`,
		`sed -n "${n}p" `+dir+`/answers`)
}

func writeScript(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := sshtest.WriteFile(t, dir, name, append([]string{"#!/bin/sh"}, lines...)...)
	if err := os.Chmod(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// resolveFor resolves alias "box" for addr with the -o options given; its
// home is empty, so no default key file exists.
func resolveFor(t *testing.T, addr string, opts ...string) *sshcfg.Target {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	tg, err := sshcfg.Resolve("box", sshcfg.Options{
		ConfigFile: "none",
		// ssh takes the first value: the test's options win.
		Options: append(opts, "HostName "+host, "Port "+port, "User alice", "IdentityAgent none"),
		Home:    dir, LocalUser: "tester", SystemConfig: "/nonexistent",
		Getenv: func(string) (string, bool) { return "", false },
		Exec:   func(string) (bool, error) { return false, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// loginTo authenticates to addr as tgt says, with env as the
// environment, and returns the error the dialer would report.
func loginTo(t *testing.T, addr string, tgt *sshcfg.Target, o IdentityOptions) error {
	t.Helper()
	ids, err := LoadIdentities(tgt, o)
	if err != nil {
		return err
	}
	defer ids.Close()
	login := ids.Login(LoginOptions{})
	cfg := &ssh.ClientConfig{
		User:            tgt.User,
		Auth:            []ssh.AuthMethod{ids.AuthMethod()},
		AuthCallback:    login.Callback,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         time.Minute,
	}
	c, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
	}
	return login.Error(err)
}

// TestLoginMethods: the methods tried, in order, for PreferredAuthentications,
// NumberOfPasswordPrompts and BatchMode, against a server that takes
// every method and refuses every key; and the prompts the askpass program
// was given, as ssh gives them.
func TestLoginMethods(t *testing.T) {
	srv := startAuthServer(t, func(s *authServer) *ssh.ServerConfig {
		return &ssh.ServerConfig{
			PublicKeyCallback:           refuseKeys(s),
			PasswordCallback:            passwordIs(s, "sesame"),
			KeyboardInteractiveCallback: kbdint(s, []qa{{"Password: ", "sesame"}}, []qa{{"Code: ", "123456"}, {"Second code: ", "42"}}),
		}
	})
	key := sshtest.Keygen(t, t.TempDir(), "id_refused", sshtest.KeyOptions{})
	pw := "alice@127.0.0.1's password: "
	tests := []struct {
		name    string
		opts    []string
		answers []string
		env     map[string]string // besides SSH_ASKPASS and SSH_ASKPASS_REQUIRE=force
		// want are the attempts the server saw, prompts what askpass
		// was asked.
		want    []string
		prompts []string
		wantErr string // "" for success
	}{
		{name: "default order: key, keyboard-interactive, then password",
			answers: []string{"sesame", "123456", "42"},
			want:    []string{"publickey", "keyboard-interactive:sesame,123456,42"},
			prompts: []string{"(alice@127.0.0.1) Password: ", "(alice@127.0.0.1) Code: ", "(alice@127.0.0.1) Second code: "}},
		{name: "keyboard-interactive refused, then password",
			opts:    []string{"NumberOfPasswordPrompts 1"},
			answers: []string{"no", "no", "no", "sesame"},
			want:    []string{"publickey", "keyboard-interactive:no,no,no", "password:sesame"},
			prompts: []string{"(alice@127.0.0.1) Password: ", "(alice@127.0.0.1) Code: ", "(alice@127.0.0.1) Second code: ", pw}},
		{name: "PreferredAuthentications password only",
			opts:    []string{"PreferredAuthentications password"},
			answers: []string{"sesame"},
			want:    []string{"password:sesame"}, prompts: []string{pw}},
		{name: "PreferredAuthentications password before publickey",
			opts:    []string{"PreferredAuthentications password,publickey"},
			answers: []string{"wrong", "wrong", "wrong"},
			want:    []string{"password:wrong", "password:wrong", "password:wrong", "publickey"},
			prompts: []string{pw, pw, pw}, wantErr: "the password was refused (3 tries)"},
		{name: "NumberOfPasswordPrompts counted",
			opts:    []string{"PreferredAuthentications password", "NumberOfPasswordPrompts 2"},
			answers: []string{"wrong", "wrong", "sesame"},
			want:    []string{"password:wrong", "password:wrong"},
			prompts: []string{pw, pw}, wantErr: "the password was refused (2 tries)"},
		{name: "HostKeyAlias names the host in prompts",
			opts:    []string{"PreferredAuthentications password", "HostKeyAlias Alias.Example"},
			answers: []string{"sesame"},
			want:    []string{"password:sesame"}, prompts: []string{"alice@alias.example's password: "}},
		{name: "PasswordAuthentication no",
			opts:    []string{"PreferredAuthentications password,publickey", "PasswordAuthentication no"},
			answers: []string{"sesame"},
			want:    []string{"publickey"}, wantErr: "the server refused every identity"},
		{name: "unknown methods skipped",
			opts:    []string{"PreferredAuthentications gssapi-with-mic,hostbased,none,password"},
			answers: []string{"sesame"},
			want:    []string{"password:sesame"}, prompts: []string{pw}},
		{name: "BatchMode asks nobody",
			opts:    []string{"BatchMode yes"},
			answers: []string{"sesame"},
			want:    []string{"publickey"}, wantErr: "the server refused every identity"},
		{name: "no display: nobody asked",
			env:     map[string]string{"SSH_ASKPASS_REQUIRE": ""},
			answers: []string{"sesame"},
			want:    []string{"publickey"}, wantErr: "the server refused every identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"SSH_ASKPASS": askpassScript(t, dir, tt.answers...), "SSH_ASKPASS_REQUIRE": "force"}
			for k, v := range tt.env {
				env[k] = v
			}
			before := len(srv.tried())
			tgt := resolveFor(t, srv.addr, append([]string{"IdentityFile " + key.Path}, tt.opts...)...)
			log, buf := newLog()
			err := loginTo(t, srv.addr, tgt, IdentityOptions{Getenv: mapEnv(env), Logger: log})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("login: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("login = %v; want an error with %q", err, tt.wantErr)
			}
			if got := srv.tried()[before:]; !slices.Equal(got, tt.want) {
				t.Errorf("the server saw %q; want %q", got, tt.want)
			}
			if got := readLines(t, filepath.Join(dir, "prompts")); !slices.Equal(got, tt.prompts) {
				t.Errorf("askpass was asked %q; want %q", got, tt.prompts)
			}
			for _, l := range readLines(t, filepath.Join(dir, "env")) {
				if l != "prompt=unset secret=unset" {
					t.Errorf("askpass environment: %s", l)
				}
			}
			for _, secret := range []string{"sesame", "123456"} {
				if strings.Contains(buf.String(), secret) || err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("%q leaked:\n%v\n%s", secret, err, buf)
				}
			}
			if err != nil && verdict.Hint(err) == "" {
				t.Errorf("no hint for %v", err)
			}
		})
	}
}

// TestLoginPartialSuccess is "AuthenticationMethods publickey,password":
// the key succeeds partially, the server's list changes to password,
// and the login starts over on it, as ssh does.
func TestLoginPartialSuccess(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_first", sshtest.KeyOptions{})
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key.Public))
	if err != nil {
		t.Fatal(err)
	}
	srv := startAuthServer(t, func(s *authServer) *ssh.ServerConfig {
		return &ssh.ServerConfig{
			PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
				s.note("publickey")
				if !keysEqual(k, pub) {
					return nil, errors.New("not this key")
				}
				return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{PasswordCallback: passwordIs(s, "sesame")}}
			},
		}
	})
	for _, tc := range []struct {
		name, pref string
	}{{"default", ""}, {"password first", "password,publickey"}} {
		t.Run(tc.name, func(t *testing.T) {
			adir := t.TempDir()
			env := map[string]string{"SSH_ASKPASS": askpassScript(t, adir, "sesame"), "DISPLAY": ":0"}
			opts := []string{"IdentityFile " + key.Path}
			if tc.pref != "" {
				opts = append(opts, "PreferredAuthentications "+tc.pref)
			}
			before := len(srv.tried())
			log, buf := newLog()
			if err := loginTo(t, srv.addr, resolveFor(t, srv.addr, opts...), IdentityOptions{Getenv: mapEnv(env), Logger: log}); err != nil {
				t.Fatalf("login: %v\n%s", err, buf)
			}
			if got, want := srv.tried()[before:], []string{"publickey", "password:sesame"}; !slices.Equal(got, want) {
				t.Errorf("the server saw %q; want %q", got, want)
			}
			if !strings.Contains(buf.String(), "partial success") {
				t.Errorf("no partial success logged:\n%s", buf)
			}
		})
	}
}

// TestLoginHostileAskpass: an askpass program that hangs, floods, fails or
// prints nothing ends the login within bounds with an *AskpassError, which
// holds none of its output, and it is not asked again.
func TestLoginHostileAskpass(t *testing.T) {
	srv := startAuthServer(t, func(s *authServer) *ssh.ServerConfig {
		return &ssh.ServerConfig{PasswordCallback: passwordIs(s, "sesame"),
			KeyboardInteractiveCallback: kbdint(s, []qa{{"Code: ", "1"}})}
	})
	const timeout = 2 * time.Second
	tests := []struct {
		name, want string
		script     []string
	}{
		{"hangs", "did not answer within 2s", []string{"echo started >> $0.runs", "exec sleep 600"}},
		{"hangs holding the pipe", "did not answer within 2s", []string{"echo started >> $0.runs", "sleep 600 &", "exec sleep 600"}},
		{"floods", "printed more than 1023 bytes", []string{"echo started >> $0.runs", "exec yes sesame-sesame"}},
		{"exits non-zero", "exited with status 1", []string{"echo started >> $0.runs", "echo sesame", "exit 1"}},
		{"prints nothing", "printed no password", []string{"echo started >> $0.runs"}},
	}
	for _, tt := range tests {
		for _, method := range []string{"password", "keyboard-interactive"} {
			if method == "keyboard-interactive" && tt.name == "prints nothing" {
				continue // an empty answer is an answer there (a push approval's "just press enter")
			}
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				prog := writeScript(t, dir, "askpass", tt.script...)
				env := map[string]string{"SSH_ASKPASS": prog, "SSH_ASKPASS_REQUIRE": "force"}
				tgt := resolveFor(t, srv.addr, "PreferredAuthentications "+method)
				log, buf := newLog()
				start := time.Now()
				err := sshtest.Within(t, 30*time.Second, func() error {
					return loginTo(t, srv.addr, tgt, IdentityOptions{Getenv: mapEnv(env), Logger: log, askpassTimeout: timeout})
				})
				var ae *AskpassError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) || !verdict.Permanent(err) || verdict.Hint(err) == "" {
					t.Fatalf("login = %v; want a permanent *AskpassError with %q and a hint", err, tt.want)
				}
				if strings.Contains(err.Error(), "sesame") || strings.Contains(buf.String(), "sesame") {
					t.Errorf("the program's output leaked: %v\n%s", err, buf)
				}
				if runs := readLines(t, prog+".runs"); len(runs) != 1 {
					t.Errorf("askpass ran %d times; want once", len(runs))
				}
				t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

// TestAskpassRule is read_passphrase's choice without a terminal: which
// program runs, if any, for each SSH_ASKPASS_REQUIRE and display.
func TestAskpassRule(t *testing.T) {
	const prog = "/opt/askpass"
	tests := []struct {
		require, display, wayland string
		askpass                   string
		want                      string // the program run, "" for none
	}{
		{askpass: prog, want: ""},
		{askpass: prog, display: ":0", want: prog},
		{askpass: prog, wayland: "wayland-0", want: prog},
		{require: "force", askpass: prog, want: prog},
		{require: "FORCE", askpass: prog, want: prog},
		{require: "prefer", askpass: prog, want: ""},
		{require: "prefer", askpass: prog, display: ":0", want: prog},
		{require: "never", askpass: prog, display: ":0", want: ""},
		{require: "never", askpass: prog, want: ""},
		{require: "bogus", askpass: prog, display: ":0", want: prog},
		{require: "bogus", askpass: prog, want: ""},
		{require: "force", askpass: "", want: defaultIfInstalled()},
		{askpass: "", display: ":0", want: defaultIfInstalled()},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("require=%q display=%q wayland=%q askpass=%q", tt.require, tt.display, tt.wayland, tt.askpass)
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"SSH_ASKPASS_REQUIRE": tt.require, "DISPLAY": tt.display, "WAYLAND_DISPLAY": tt.wayland, "SSH_ASKPASS": tt.askpass}
			got, why := asker{getenv: mapEnv(env)}.program()
			if got != tt.want {
				t.Errorf("program = %q (%s); want %q", got, why, tt.want)
			}
			if got == "" && why == "" {
				t.Error("no reason given for asking nobody")
			}
		})
	}
}

func defaultIfInstalled() string {
	if _, err := os.Stat(defaultAskpass); err == nil {
		return defaultAskpass
	}
	return ""
}
