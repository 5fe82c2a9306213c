// Package sshcfg turns a host alias, the user's OpenSSH configuration files
// and command-line options into one resolved [Target], following OpenSSH's
// rules: the first value obtained for a keyword wins, -o options come before
// the files, -F replaces ~/.ssh/config and skips the system file, and Host
// and Match blocks, Include, tokens and ~ are honoured as ssh(1) does.
// [Target.WriteConfig] prints the result as ssh -G does, and a differential
// test holds the two to the same answers on a corpus of configurations.
//
// github.com/kevinburke/ssh_config lexes each line; this package splits
// files into lines itself, so that a line the library cannot handle costs
// only that line, re-reads values with OpenSSH's quoting rules, and adds
// what the library leaves out (Match, defaults, expansion). A line that
// cannot be honoured is reported as a warning naming its file and line,
// and the rest of the file still applies.
package sshcfg
