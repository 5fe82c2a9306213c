// Package sshtest starts the real things that m2m-ssh's tests run against:
// OpenSSH's sshd and ssh-agent on 127.0.0.1, keys made by ssh-keygen, and the
// binaries under test.
//
// Every helper takes a testing.TB and cleans up after itself. When an OpenSSH
// program is missing the test is skipped, except under CI=true, where a
// missing program is a failure: CI must never pass by skipping.
package sshtest
