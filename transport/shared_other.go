//go:build !unix

package transport

// socketOwner is unknown where there are no Unix sockets to share.
func socketOwner(string) int { return -1 }
