// Package demo runs a throwaway SSH server on 127.0.0.1 with a small MCP
// server behind it, so that m2m-ssh can show what it does on a machine
// with no host of its own to reach: ephemeral host and client keys, a
// random free port, and an ssh config file naming it all, which m2m-ssh
// resolves and dials like any other.
package demo
