package mux

const (
	// MaxMessage bounds one message's body: OpenSSH's mux.c refuses more
	// than 256 KiB too.
	MaxMessage = 256 << 10
	// MaxConns bounds the control connections a Server serves at once: a
	// busy master has a handful; a local client looping on connect must
	// not exhaust descriptors (each costs up to four).
	MaxConns = 64
	// MaxSessions bounds the sessions a Server runs at once, one SSH
	// channel each (OpenSSH's sshd allows 10 per connection by default,
	// MaxSessions): more are refused with MUX_S_FAILURE.
	MaxSessions = 32
)
