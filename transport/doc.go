// Package transport reaches an MCP server on the other side of SSH and
// yields a Remote: one session channel (a shell, an exec of a command, or
// a subsystem) whose stdin and stdout carry the server's bytes. It dials
// the target directly, through jump hosts or through a ProxyCommand,
// authenticates, keeps the connection alive, and says how the channel
// ended (ExitError, ErrNoExitStatus). A Trace sees each step of a dial as
// the dialer takes it, which is how doctor checks exactly what a session
// does.
//
// It knows nothing of JSON-RPC: what flows over a Remote is the business
// of package bridge.
//
// On Linux the host's pipes (Stdio) and the TCP connection are read and
// written with raw system calls that wait in the runtime's poller, which
// spares the scheduler's per-call bookkeeping and the context switches it
// costs on every round trip; docs/benchmarks.md has the measurements.
package transport
