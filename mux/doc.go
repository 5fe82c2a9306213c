// Package mux speaks OpenSSH's connection-multiplexing protocol (the
// ControlMaster / ControlPath protocol of openssh-portable's PROTOCOL.mux
// and mux.c, version 4), from both sides.
//
// The client side ([Dial], [Client], [Session]) rides a master that
// `ssh -M` (or m2m-ssh) started: it checks the control socket as OpenSSH
// trusts it, exchanges hellos, and opens sessions whose stdin, stdout and
// stderr are this process's own descriptors, passed to the master with
// SCM_RIGHTS; the master's exit message becomes the session's exit status.
//
// The server side ([Listen], [Server]) is a master that `ssh -S PATH` can
// ride: it checks that every peer runs as this user (or root, as OpenSSH
// allows) before a byte is exchanged, answers hello, alive check and
// terminate, opens a session channel for each new-session request through
// [Server.Open] (asking for agent forwarding through [Server.ForwardAgent]
// when the session wants it) and copies the passed descriptors to and from
// it. Every other request (forwardings, stdio forwarding, proxy mode, stop
// listening) is refused with the protocol's failure message.
//
// The package knows nothing of JSON-RPC or of OpenSSH's configuration, and
// does not dial SSH itself: the master process hands the server an opener.
//
// Every message is a uint32 length and a body of at most [MaxMessage]
// bytes; a peer that sends more, or a body that does not parse, ends the
// control connection with a [*ProtocolError]. Every blocking call of the
// client honours its context. On Windows the package compiles but every
// entry point returns [ErrUnsupported].
package mux
