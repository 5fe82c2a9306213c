// Package agentauth decides who we are and who they are: the signers
// m2m-ssh offers to a server (ssh-agent keys, key files, certificates, a
// deploy key from the environment) and the check of the server's host key
// against known_hosts, following OpenSSH's rules.
//
// LoadIdentities gathers the signers for a target (identities.go, agent.go,
// keyfile.go); Identities.Login chooses the authentication methods of one
// connection as ssh does (PreferredAuthentications, password and
// keyboard-interactive, login.go), asking a person only through the
// askpass program, as ssh does without a terminal (askpass.go), which also
// answers key passphrases. NewHostKeyChecker reads its known_hosts files
// (hostkeys.go, knownhosts.go), runs KnownHostsCommand
// (knownhosts_command.go), checks the server's address under CheckHostIP
// (checkhostip.go) and records new keys under accept-new
// (knownhosts_write.go); EnsureKey creates the --client-key file
// (keygen.go). KeyServer talks to m2m-mcp-server-ssh-server's key server,
// and PinHostKey keeps the server keys it hands out (keyserver.go).
//
// Errors that a user can act on carry a Hint method saying what to do
// (errors.go): *AuthError ("Authentication failed"), *HostKeyError ("Host
// key verification failed"), *KeyFileError, *NoIdentitiesError,
// *AskpassError, *KnownHostsCommandError. Secrets (passphrases, passwords,
// answers, key text) are never logged or put in errors.
package agentauth
