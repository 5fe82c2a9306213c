//go:build windows

package agentauth

import (
	"net"
	"os"
	"strings"
	"time"

	"github.com/Microsoft/go-winio"
)

// isSocket reports whether an agent listens at path: a named pipe
// (\\.\pipe\...), or a Unix socket, which Windows has had since 10 1803.
func isSocket(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// dialAgentSocket connects to OpenSSH's agent pipe (or any pipe
// SSH_AUTH_SOCK names), or to a Unix socket for agents that serve one.
func dialAgentSocket(sock string, timeout time.Duration) (net.Conn, error) {
	if strings.HasPrefix(sock, `\\.\pipe\`) || strings.HasPrefix(sock, `//./pipe/`) {
		return winio.DialPipe(sock, &timeout)
	}
	return net.DialTimeout("unix", sock, timeout)
}
