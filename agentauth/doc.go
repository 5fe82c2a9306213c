// Package agentauth decides who we are and who they are: the signers
// m2m-ssh offers to a server (ssh-agent keys, key files, certificates, a
// deploy key from the environment) and the check of the server's host key
// against known_hosts, following OpenSSH's rules.
//
// Errors that a user can act on carry a Hint method saying what to do.
package agentauth
