package agentauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// The methods m2m-ssh can use, by their protocol names.
const (
	methodPublickey = "publickey"
	methodKbdint    = "keyboard-interactive"
	methodPassword  = "password"
)

// defaultPreferred is ssh's order (authmethods in sshconnect2.c) less the
// methods m2m-ssh lacks (gssapi-with-mic, hostbased), which ssh leaves out
// by default anyway.
var defaultPreferred = []string{methodPublickey, methodKbdint, methodPassword}

const (
	// maxKbdintRounds bounds the info requests of one keyboard-interactive
	// attempt: each may run the askpass program, and a server can send
	// them without end. Real ones (password, then an OTP) use one or two.
	maxKbdintRounds = 16
	// maxKbdintPrompts bounds the prompts of one info request, each one
	// an askpass run.
	maxKbdintPrompts = 16
)

// Login chooses the authentication methods of one connection as ssh's
// authmethod_get does: the first of PreferredAuthentications that the
// server allows and that is still enabled, starting over when the server's
// list changes (a partial success, as under "AuthenticationMethods
// publickey,password"); password and keyboard-interactive each at most
// NumberOfPasswordPrompts times, never in BatchMode, answered through the
// askpass program. Use it for one handshake: its Callback is the
// ssh.ClientConfig's AuthCallback, then Error explains a failure.
type Login struct {
	ids       *Identities
	ctx       context.Context
	publickey ssh.AuthMethod
	user      string
	host      string // as ssh names it in prompts: HostKeyAlias, else HostName
	log       *slog.Logger
	asking    func(bool)

	preferred []string
	enabled   map[string]bool

	supported   string // the server's list last seen
	next        int    // where in preferred to look next, for that list
	current     string // the method being repeated while enabled
	passwords   int    // password attempts made
	kbdints     int    // keyboard-interactive attempts made
	sawInfoReq  bool   // the server sent a keyboard-interactive prompt
	partials    int
	partial     []string // the methods that succeeded partially
	allowed     []string // the server's list last seen
	askFailed   error    // an askpass failure: no further asking
	askedNobody bool     // a method needed an answer and nobody could be asked
}

// LoginOptions are the inputs to Login besides the identities.
type LoginOptions struct {
	// Context, when it ends, stops an askpass program being waited for.
	Context context.Context
	// Publickey is the method that offers the identities; nil means
	// Identities.AuthMethod. (A trace passes one that notes which key
	// signed.)
	Publickey ssh.AuthMethod
	// Asking, when set, is told when a person starts (true) and stops
	// (false) being asked, so that a handshake timeout can wait.
	Asking func(asking bool)
}

// Login starts the authentication of one connection to the target.
func (ids *Identities) Login(o LoginOptions) *Login {
	t := ids.t
	l := &Login{ids: ids, ctx: o.Context, publickey: o.Publickey, user: t.User, host: t.HostKeyAlias, log: ids.ask.log, asking: o.Asking}
	if l.asking == nil {
		l.asking = func(bool) {}
	}
	if l.ctx == nil {
		l.ctx = context.Background()
	}
	if l.publickey == nil {
		l.publickey = ids.AuthMethod()
	}
	if l.host == "" {
		l.host = t.HostName
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.preferred = defaultPreferred
	if t.PreferredAuthentications != "" {
		l.preferred = strings.Split(t.PreferredAuthentications, ",")
	}
	interactive := !t.BatchMode
	l.enabled = map[string]bool{
		methodPublickey: configured(t, "PubkeyAuthentication", t.PubkeyAuthentication) && len(ids.ids) > 0,
		methodKbdint:    interactive && configured(t, "KbdInteractiveAuthentication", t.KbdInteractiveAuthentication),
		methodPassword:  interactive && configured(t, "PasswordAuthentication", t.PasswordAuthentication),
	}
	return l
}

// configured is a yes/no keyword as resolved, or OpenSSH's "yes" for a
// Target not made by sshcfg.Resolve.
func configured(t *sshcfg.Target, keyword string, v bool) bool {
	return v || !t.Set(keyword)
}

// numberOfPrompts is NumberOfPasswordPrompts, or OpenSSH's 3 for a Target
// not made by sshcfg.Resolve.
func numberOfPrompts(t *sshcfg.Target) int {
	if !t.Set("NumberOfPasswordPrompts") && t.NumberOfPasswordPrompts == 0 {
		return 3
	}
	return t.NumberOfPasswordPrompts
}

func (l *Login) prompts() int { return numberOfPrompts(l.ids.t) }

// errNoMethods ends an authentication that has no method left; Error
// turns it into an *AuthError.
var errNoMethods = errors.New("ssh: unable to authenticate: no authentication method left to try")

// Callback is the ssh.ClientConfig's AuthCallback.
func (l *Login) Callback(ac *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
	if l.askFailed != nil {
		return nil, l.askFailed
	}
	l.allowed = ac.AllowedMethods
	list := strings.Join(ac.AllowedMethods, ",")
	if len(ac.PartialSuccessMethods) > l.partials {
		l.partials = len(ac.PartialSuccessMethods)
		l.partial = slices.Clone(ac.PartialSuccessMethods)
		l.log.Info("authenticated with partial success", "method", ac.PartialSuccessMethods[l.partials-1], "can continue", list)
		// ssh's pubkey_reset: the keys may be offered again.
		l.enabled[methodPublickey] = l.publickeyUsable()
	}
	if list != l.supported {
		l.supported, l.next, l.current = list, 0, ""
		l.log.Debug("authentications that can continue", "methods", list)
	} else if l.current != "" && l.usable(l.current) {
		return l.method(l.current), nil
	}
	for l.next < len(l.preferred) {
		name := l.preferred[l.next]
		l.next++
		if !slices.Contains(ac.AllowedMethods, name) || !l.usable(name) {
			continue
		}
		l.current = name
		l.log.Debug("next authentication method", "method", name)
		return l.method(name), nil
	}
	return nil, errNoMethods
}

func (l *Login) publickeyUsable() bool {
	t := l.ids.t
	return configured(t, "PubkeyAuthentication", t.PubkeyAuthentication) && len(l.ids.ids) > 0
}

// usable reports whether name may be tried (again), disabling it for good
// once it may not, as ssh does with a method that sends nothing.
func (l *Login) usable(name string) bool {
	if !l.enabled[name] {
		return false
	}
	ok := true
	switch name {
	case methodPassword:
		ok = l.passwords < l.prompts() && l.canAsk()
	case methodKbdint:
		// ssh gives up on a keyboard-interactive that never prompted.
		ok = l.kbdints < l.prompts() && (l.kbdints == 0 || l.sawInfoReq) && l.canAsk()
	}
	if !ok {
		l.enabled[name] = false
	}
	return ok
}

// canAsk reports whether an askpass program can be run, noting when one
// was needed and none could be.
func (l *Login) canAsk() bool {
	if l.ids.ask.getenv != nil && l.ids.ask.available() {
		return true
	}
	if !l.askedNobody {
		_, why := l.ids.ask.program()
		l.log.Info("the server would take a password or keyboard-interactive answers, but nobody can be asked", "reason", why)
	}
	l.askedNobody = true
	return false
}

func (l *Login) method(name string) ssh.AuthMethod {
	switch name {
	case methodPassword:
		l.passwords++
		return ssh.PasswordCallback(l.password)
	case methodKbdint:
		l.kbdints++
		rounds := 0
		return ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			rounds++
			return l.challenge(rounds, name, instruction, questions)
		})
	}
	// Offered once; a partial success enables it again.
	l.enabled[methodPublickey] = false
	return l.publickey
}

// password asks for the password as ssh does: "user@host's password: ".
func (l *Login) password() (string, error) {
	if l.passwords > 1 {
		l.log.Info("Permission denied, please try again.")
	}
	pass, err := l.ask(fmt.Sprintf("%s@%s's password: ", l.user, l.host))
	if err != nil {
		l.askFailed = err
		return "", err
	}
	defer clear(pass)
	if len(pass) == 0 {
		prog, _ := l.ids.ask.program()
		err := &AskpassError{Program: prog, Prompt: fmt.Sprintf("%s@%s's password: ", l.user, l.host), Reason: "printed no password"}
		l.askFailed = err
		return "", err
	}
	return string(pass), nil
}

// challenge answers one keyboard-interactive info request: ssh prints
// its name and instruction (here: logs them) and asks each prompt as
// "(user@host) prompt". Echo only matters to a terminal.
func (l *Login) challenge(round int, name, instruction string, questions []string) ([]string, error) {
	l.sawInfoReq = true
	fail := func(err error) ([]string, error) {
		l.askFailed = err
		return nil, err
	}
	if round > maxKbdintRounds {
		return fail(&AskpassError{Prompt: "keyboard-interactive", Reason: fmt.Sprintf("the server asked more than %d rounds of questions", maxKbdintRounds)})
	}
	if len(questions) > maxKbdintPrompts {
		return fail(&AskpassError{Prompt: "keyboard-interactive", Reason: fmt.Sprintf("the server asked %d questions at once, more than %d", len(questions), maxKbdintPrompts)})
	}
	if name != "" || instruction != "" {
		l.log.Info("keyboard-interactive", "name", name, "instruction", instruction)
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		a, err := l.ask(fmt.Sprintf("(%s@%s) %s", l.user, l.host, q))
		if err != nil {
			return fail(err)
		}
		answers[i] = string(a)
		clear(a)
	}
	return answers, nil
}

// ask asks through the askpass program, the handshake's clock stopped.
func (l *Login) ask(prompt string) ([]byte, error) {
	l.asking(true)
	defer l.asking(false)
	return l.ids.ask.ask(l.ctx, prompt)
}

// Error explains a failed handshake: an authentication that ran out of
// methods becomes an *AuthError saying what was tried; an askpass failure
// and other errors are returned as they are.
func (l *Login) Error(err error) error {
	if err == nil {
		return nil
	}
	var ae *AskpassError
	if errors.As(err, &ae) {
		return err
	}
	aerr := l.ids.AuthError(err)
	var auth *AuthError
	if errors.As(aerr, &auth) {
		auth.Allowed, auth.Partial = l.allowed, l.partial
		auth.Passwords, auth.Kbdints = l.passwords, l.kbdints
		auth.NobodyToAsk = l.askedNobody
		auth.BatchMode = l.ids.t.BatchMode
	}
	return aerr
}
