// Package bridge carries an MCP host's JSON-RPC session to a server on the
// other side of SSH: it dials the target, opens one session channel (a
// shell, an exec of a command, or a subsystem) and copies newline-delimited
// frames both ways, unchanged and whole.
//
// The bridge reads just enough of each frame to know its kind and id, so
// that every request the host sends gets exactly one answer: the server's,
// or a JSON-RPC error from m2m-ssh when the server cannot be reached.
//
// When the connection or the remote program is lost while the host still
// talks, the bridge answers the requests in flight (CodeConnectionLost),
// reconnects with backoff, replays the handshake the host made
// (server/discover or initialize and notifications/initialized) without
// the host seeing it, and holds the host's new requests until the session
// is back or ReconnectTimeout has passed (CodeUnavailable).
//
// On Linux the host's pipes and the TCP connection are read and written
// with raw system calls that wait in the runtime's poller (Stdio), which
// spares the scheduler's per-call bookkeeping and the context switches it
// costs on every round trip; docs/benchmarks.md has the measurements.
package bridge
