package agentauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/secretenv"
)

// m2m-ssh has no terminal (its stdin and stdout are the MCP host's), so it
// asks a person as OpenSSH's read_passphrase does without one: through
// the program in SSH_ASKPASS, when DISPLAY, WAYLAND_DISPLAY or
// SSH_ASKPASS_REQUIRE allow it. Key passphrases, passwords and
// keyboard-interactive prompts all go through asker.ask.

const (
	// askpassTimeout bounds one run of the askpass program: nobody may
	// be there to answer it, and the MCP host waits for its first reply
	// meanwhile.
	askpassTimeout = 60 * time.Second
	// maxAskpassOutput is what ssh reads of an answer (a 1024-byte
	// buffer); a program that prints more is flooding, not answering.
	maxAskpassOutput = 1023
	// askpassWaitDelay bounds the wait for the answer's pipe to close
	// once the program has exited or been killed: a child it left
	// behind may hold it open.
	askpassWaitDelay = 2 * time.Second
	// defaultAskpass is the program ssh runs when SSH_ASKPASS is unset
	// (_PATH_SSH_ASKPASS_DEFAULT of Debian's and most Linux builds).
	defaultAskpass = "/usr/bin/ssh-askpass"
)

// asker asks a person for a secret or an answer.
type asker struct {
	getenv func(string) string
	log    *slog.Logger
	// timeout overrides askpassTimeout in tests; zero means
	// askpassTimeout.
	timeout time.Duration
}

// program is the askpass program ssh would run without a terminal, or ""
// and why it would ask nobody. As in read_passphrase: a display allows
// askpass; SSH_ASKPASS_REQUIRE=force allows it without one, "never"
// forbids it, "prefer" changes nothing when there is no terminal.
func (a asker) program() (prog, whyNot string) {
	getenv := a.getenv
	allowed := getenv("DISPLAY") != "" || getenv("WAYLAND_DISPLAY") != ""
	switch strings.ToLower(getenv("SSH_ASKPASS_REQUIRE")) {
	case "force":
		allowed = true
	case "never":
		return "", "SSH_ASKPASS_REQUIRE is never"
	}
	prog = getenv("SSH_ASKPASS")
	if !allowed {
		if prog == "" {
			return "", "SSH_ASKPASS is not set"
		}
		return "", "SSH_ASKPASS is used only with DISPLAY or WAYLAND_DISPLAY set, or with SSH_ASKPASS_REQUIRE=force"
	}
	if prog == "" {
		// ssh would run its default program; where it is not
		// installed, ssh fails to run it and asks nobody.
		if _, err := os.Stat(defaultAskpass); err != nil {
			return "", "SSH_ASKPASS is not set"
		}
		prog = defaultAskpass
	}
	return prog, ""
}

// available reports whether ask would run a program.
func (a asker) available() bool {
	prog, _ := a.program()
	return prog != ""
}

// ask runs the askpass program with prompt as its only argument, as ssh
// does, and returns the first line it prints. The caller clears the
// answer when done with it. An error is an *AskpassError; it never holds
// any of the program's output.
func (a asker) ask(ctx context.Context, prompt string) ([]byte, error) {
	prog, whyNot := a.program()
	if prog == "" {
		return nil, &AskpassError{Prompt: prompt, Reason: "nobody to ask: " + whyNot, noProgram: true}
	}
	timeout := a.timeout
	if timeout <= 0 {
		timeout = askpassTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &answerBuffer{max: maxAskpassOutput, full: cancel}
	defer out.clear()
	cmd := exec.CommandContext(ctx, prog, prompt)
	cmd.Env = askpassEnviron()
	cmd.Stdout = out
	cmd.WaitDelay = askpassWaitDelay
	ownGroup(cmd)
	a.log.Debug("asking through SSH_ASKPASS", "program", prog, "prompt", prompt)
	err := cmd.Run()
	fail := func(reason string) error {
		return &AskpassError{Program: prog, Prompt: prompt, Reason: reason}
	}
	switch {
	case out.overflowed():
		return nil, fail(fmt.Sprintf("printed more than %d bytes", maxAskpassOutput))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fail(fmt.Sprintf("did not answer within %v", timeout))
	case ctx.Err() != nil:
		e := fail("stopped: the connection was given up").(*AskpassError)
		e.stopped = true
		return nil, e
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fail(fmt.Sprintf("exited with status %d (cancelled?)", ee.ExitCode()))
		}
		return nil, fail(err.Error()) // could not start it; no output in this
	}
	return out.firstLine(), nil
}

// askpassEnviron is the askpass program's environment: m2m-ssh's without
// its secrets, and without an inherited SSH_ASKPASS_PROMPT, which ssh sets
// only to ask for a confirmation ("confirm") or to notify ("none").
func askpassEnviron() []string {
	env := secretenv.Environ()
	out := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SSH_ASKPASS_PROMPT=") {
			out = append(out, kv)
		}
	}
	return out
}

// answerBuffer keeps at most max bytes of the answer and stops the
// program when it prints more. Without full (a program's stderr, kept
// for an error) it keeps the first max bytes and reads the rest to
// nothing: a chatty program must not die of a closed pipe.
type answerBuffer struct {
	mu   sync.Mutex
	b    []byte
	max  int
	over bool
	full func()
}

func (w *answerBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.b)+len(p) > w.max {
		w.over = true
		if w.full == nil {
			w.b = append(w.b, p[:w.max-len(w.b)]...)
			return len(p), nil
		}
		w.full()
		return 0, errors.New("answer too long")
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *answerBuffer) overflowed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.over
}

// firstLine is a copy of the answer up to its first CR or LF, as ssh
// takes it.
func (w *answerBuffer) firstLine() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := w.b
	if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	return bytes.Clone(line)
}

func (w *answerBuffer) clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.b[:cap(w.b)])
}

// AskpassError is a question nobody answered: no askpass program may be
// run, or the one run did not answer (it hung, flooded, failed or was
// cancelled). It never holds any of the program's output.
type AskpassError struct {
	Program string // "" when none could be run
	Prompt  string
	Reason  string

	noProgram bool
	stopped   bool // the connection was given up: not the program's doing
}

func (e *AskpassError) Error() string {
	if e.Program == "" {
		return fmt.Sprintf("cannot ask %q: %s", e.Prompt, e.Reason)
	}
	return fmt.Sprintf("SSH_ASKPASS program %s %s when asked %q", e.Program, e.Reason, e.Prompt)
}

// Permanent: asking again would pop up the same question, or hang the
// same way; the user must answer or change the setup. A program stopped
// because the connection was given up says nothing of itself.
func (e *AskpassError) Permanent() bool { return !e.stopped }

func (e *AskpassError) Hint() string {
	if e.noProgram {
		return askpassHint
	}
	return "check the program SSH_ASKPASS names: it must print the answer on one line and exit 0, within " + askpassTimeout.String()
}

// askpassHint says how to let m2m-ssh ask, which it cannot through the
// MCP host.
const askpassHint = "m2m-ssh has no terminal: set SSH_ASKPASS to a program that prints the answer to the prompt it is given " +
	"(and SSH_ASKPASS_REQUIRE=force when there is no DISPLAY), or use a key (ssh-add) instead"
