// Package sshcfg turns a host alias, the user's OpenSSH configuration files
// and command-line options into one resolved [Target], following OpenSSH's
// rules: the first value obtained for a keyword wins, -o options come before
// the files, -F replaces ~/.ssh/config and skips the system file, and Host
// and Match blocks, Include, tokens and ~ are honoured as ssh(1) does.
//
// github.com/kevinburke/ssh_config does the parsing; this package closes
// its gaps and adds what it leaves to the caller (defaults, expansion,
// Match). A line that cannot be honoured is reported as a warning naming
// its file and line, and the rest of the file still applies.
package sshcfg
