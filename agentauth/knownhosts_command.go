package agentauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
	"golang.org/x/crypto/ssh"
)

const (
	// knownHostsCommandTimeout bounds a KnownHostsCommand run, which ssh
	// does not: the handshake waits on it, and a command that fetches
	// keys from a service that is down must fail, not hang the host.
	knownHostsCommandTimeout = 30 * time.Second
	// maxKnownHostsCommandOutput bounds what it prints: known_hosts
	// lines for one host, a few KiB; a flood is refused whole, as an
	// over-large known_hosts file is (a cut could hide a @revoked line).
	maxKnownHostsCommandOutput = 4 << 20
	// maxKnownHostsCommandStderr is how much of its stderr is kept for
	// the error when it fails.
	maxKnownHostsCommandStderr = 512
)

// commandLines runs KnownHostsCommand to look name up for invocation
// ("HOSTNAME" or "ADDRESS") as ssh's load_hostkeys_command does, and
// returns the known_hosts lines it printed. A command that cannot be run
// or exits non-zero is an error: ssh then fails ("KnownHostsCommand
// failed"). Unlike ssh, it is bounded in time and output.
func (c *HostKeyChecker) commandLines(key ssh.PublicKey, name, invocation string) ([]*knownLine, error) {
	if c.t.KnownHostsCommand == "" {
		return nil, nil
	}
	tag := "KnownHostsCommand-" + invocation
	var typ, fp, text string
	if key != nil {
		// ssh's %f is the fingerprint of the key as presented, a
		// certificate's included.
		typ, fp, text = key.Type(), ssh.FingerprintSHA256(key), base64.StdEncoding.EncodeToString(key.Marshal())
	}
	argv, err := c.t.KnownHostsCommandArgv(name, invocation, typ, fp, text)
	if err != nil {
		return nil, &KnownHostsCommandError{Command: c.t.KnownHostsCommand, Err: err}
	}
	timeout := c.commandTimeout
	if timeout <= 0 {
		timeout = knownHostsCommandTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := &answerBuffer{max: maxKnownHostsCommandOutput, full: cancel}
	errOut := &answerBuffer{max: maxKnownHostsCommandStderr}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = secretenv.Environ()
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = askpassWaitDelay
	ownGroup(cmd)
	c.log.Debug("running KnownHostsCommand", "argv", strings.Join(argv, " "))
	err = cmd.Run()
	fail := func(reason string) error {
		e := &KnownHostsCommandError{Command: strings.Join(argv, " "), Reason: reason}
		if s := strings.TrimSpace(string(errOut.firstLine())); s != "" {
			e.Stderr = s
		}
		return e
	}
	switch {
	case out.overflowed():
		return nil, fail(fmt.Sprintf("printed more than %d bytes", maxKnownHostsCommandOutput))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fail(fmt.Sprintf("did not finish within %v", timeout))
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fail(fmt.Sprintf("exited with status %d", ee.ExitCode()))
		}
		return nil, fail(err.Error())
	}
	db := &knownHosts{}
	var bad badLines
	out.mu.Lock()
	printed := bytes.Clone(out.b)
	out.mu.Unlock()
	if err := db.read(bytes.NewReader(printed), tag, &bad); err != nil {
		return nil, fail(err.Error())
	}
	bad.warn(c.log, tag)
	for _, l := range db.lines {
		l.fromCommand = true
	}
	return db.lines, nil
}

// KnownHostsCommandError is a KnownHostsCommand that could not give the
// host's keys; the connection is not made, as with ssh.
type KnownHostsCommandError struct {
	Command string
	Reason  string
	Stderr  string // its first line of stderr, if any
	Err     error  // the command line could not be formed
}

func (e *KnownHostsCommandError) Error() string {
	if e.Err != nil {
		return "KnownHostsCommand failed: " + e.Err.Error()
	}
	msg := fmt.Sprintf("KnownHostsCommand failed: %s %s", e.Command, e.Reason)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *KnownHostsCommandError) Unwrap() error { return e.Err }

// Permanent: a command line that cannot be formed is a configuration
// error; a command that failed may succeed later (a key service that was
// down).
func (e *KnownHostsCommandError) Permanent() bool { return e.Err != nil }

func (e *KnownHostsCommandError) Hint() string {
	return "KnownHostsCommand must print known_hosts lines and exit 0 within " + knownHostsCommandTimeout.String() + "; check it, or run 'ssh -v' with the same configuration"
}
