// Package master is m2m-ssh as OpenSSH's ControlMaster: a process of its
// own, in the background, that holds one SSH connection to a host and
// serves OpenSSH's multiplexing protocol on the ControlPath socket, so that
// every later m2m-ssh for the host, and ssh -S, opens its session on that
// connection instead of connecting and authenticating again.
//
// Two halves meet at a readiness pipe. Start, in the m2m-ssh that finds no
// live master, takes a lock beside ControlPath, starts the master process
// detached from its own process group and stdio, and waits until the
// master says its socket is up or why it could not be. Master.Run, in that
// process, dials, listens and serves until ControlPersist's time runs out
// with no session open, the connection dies, or ssh -O exit asks it to go.
package master
