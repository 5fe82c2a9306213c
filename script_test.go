package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the command-line scenarios of testdata/script: help,
// version, usage errors, resolve, config, demo and logging.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: scriptSetup(nil),
		Cmds:  scriptCmds,
	})
}

// TestScriptsSSHD runs the scenarios of testdata/script/sshd, doctor's,
// against a real sshd and ssh-agent. The scripts see:
//
//	$CONFIG   an ssh config: buildbox (good), buildbox-banner (a login
//	          that prints a banner), buildbox-unknown (host key not in
//	          known_hosts), buildbox-wrongkey, buildbox-refused,
//	          buildbox-jump (through buildbox as a jump host),
//	          buildbox-via-refused (through a jump host nothing
//	          listens for), buildbox-nc (through ProxyCommand nc),
//	          buildbox-noid (no agent, no key: nothing to offer)
//	$TESTMCP  the test MCP server's path on the server
//	$SSH_AUTH_SOCK  the agent, holding buildbox's key
func TestScriptsSSHD(t *testing.T) {
	sshtest.LookPath(t, "nc")
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id_ed25519", sshtest.KeyOptions{})
	banner := sshtest.Keygen(t, dir, "id_banner", sshtest.KeyOptions{})
	stray := sshtest.Keygen(t, dir, "id_stray", sshtest.KeyOptions{})
	sshd := sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{
			key.Public,
			fmt.Sprintf("command=%q,restrict %s", "echo 'Welcome to buildbox!'; exec "+bins.testmcp, banner.Public),
		},
	})
	agent := sshtest.StartAgent(t)
	agent.Add(t, key.Path)
	kh := sshtest.WriteFile(t, dir, "known_hosts", sshd.KnownHosts()...)
	empty := sshtest.WriteFile(t, dir, "known_hosts_empty")
	config := sshtest.WriteFile(t, dir, "ssh_config",
		"Host buildbox-banner",
		"  IdentityFile "+banner.Path,
		"  IdentitiesOnly yes",
		"Host buildbox-unknown",
		"  UserKnownHostsFile "+empty,
		"Host buildbox-wrongkey",
		"  IdentityAgent none",
		"  IdentityFile "+stray.Path,
		"  IdentitiesOnly yes",
		"Host buildbox-refused",
		"  Port "+strconv.Itoa(sshtest.FreePort(t)),
		"Host buildbox-jump",
		"  ProxyJump buildbox",
		"Host buildbox-via-refused",
		"  ProxyJump buildbox-refused",
		"Host buildbox-nc",
		"  ProxyCommand nc %h %p",
		"Host buildbox-noid",
		"  IdentityAgent none",
		"Host buildbox buildbox-*",
		"  HostName "+sshd.Host,
		fmt.Sprintf("  Port %d", sshd.Port),
		"  User "+sshd.User,
		"  UserKnownHostsFile "+kh,
		"  StrictHostKeyChecking yes",
	)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script/sshd",
		Setup: scriptSetup(map[string]string{
			"CONFIG":        config,
			"TESTMCP":       bins.testmcp,
			"SSH_AUTH_SOCK": agent.Sock,
		}),
		Cmds: scriptCmds,
	})
}

// scriptSetup sets vars. m2m-ssh is on the scripts' PATH already: the
// test binary, which runs main under that name (TestMain).
func scriptSetup(vars map[string]string) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		for k, v := range vars {
			env.Setenv(k, v)
		}
		return nil
	}
}

var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// status CODE PROGRAM [ARGS...] runs PROGRAM as exec does and checks
	// its exit status (2 for a usage error).
	"status": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 {
			ts.Fatalf("usage: status CODE PROGRAM [ARGS...]")
		}
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", args[1], err)
			}
			got = ee.ExitCode()
		}
		if (got == want) == neg {
			ts.Fatalf("%s exited with status %d; want %s%d", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
		}
	},
	// mode FILE PERM checks a file's permission bits (octal).
	"mode": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: mode FILE PERM")
		}
		fi, err := os.Stat(ts.MkAbs(args[0]))
		ts.Check(err)
		want, err := strconv.ParseUint(args[1], 8, 32)
		ts.Check(err)
		if got := fi.Mode().Perm(); (got == os.FileMode(want)) == neg {
			ts.Fatalf("%s has mode %#o; want %s%#o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
		}
	},
}
