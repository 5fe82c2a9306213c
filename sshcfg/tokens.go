package sshcfg

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// tokens maps the letter after "%" to its value. Each keyword gets only
// the letters OpenSSH gives it; any other letter is an error, as in ssh.
type tokens map[byte]string

// only returns the subset of t for the given letters.
func (t tokens) only(letters string) tokens {
	s := make(tokens, len(letters))
	for i := 0; i < len(letters); i++ {
		if v, ok := t[letters[i]]; ok {
			s[letters[i]] = v
		}
	}
	return s
}

// expand is OpenSSH's percent_expand and, with dollar, its
// dollar_percent_expand: one pass over s replacing %x and ${NAME}.
// getenv is consulted for ${NAME}; an unset variable is an error.
func (t tokens) expand(s string, dollar bool, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if dollar && c == '$' && i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("environment variable %q missing closing '}'", s[i+2:])
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", fmt.Errorf("zero-length environment variable")
			}
			v, ok := getenv(name)
			if !ok {
				return "", fmt.Errorf("environment variable ${%s} has no value", name)
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		if c != '%' || t == nil {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", &TokenError{Value: s, Token: "%"}
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := t[s[i]]
		if !ok {
			return "", &TokenError{Value: s, Token: "%" + string(s[i]), Known: t.letters()}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// letters are t's tokens as "%a %b ...", for messages.
func (t tokens) letters() string {
	ls := make([]string, 0, len(t))
	for c := range t {
		ls = append(ls, "%"+string(c))
	}
	slices.Sort(ls)
	return strings.Join(ls, " ")
}

// TokenError is a value with a % that is not a token its keyword takes.
type TokenError struct {
	Value string
	Token string // "%z", or "%" for a lone % at the end
	Known string // the tokens the keyword takes, "%h %p ..."
}

func (e *TokenError) Error() string {
	if e.Token == "%" {
		return fmt.Sprintf("%q ends in a lone %%", e.Value)
	}
	return fmt.Sprintf("unknown token %s in %q", e.Token, e.Value)
}

// Permanent reports that waiting does not change it: the configuration
// must.
func (e *TokenError) Permanent() bool { return true }

func (e *TokenError) Hint() string {
	if e.Known == "" {
		return "write a literal % as %%"
	}
	return "this keyword takes " + e.Known + "; write a literal % as %%"
}

// ProxyCommandLine is ProxyCommand with the tokens ssh expands when it
// runs it: %h (HostName), %p (Port), %r (User), %n (the alias as given),
// %k (HostKeyAlias, else the alias) and %%. ProxyCommand itself stays
// unexpanded, as ssh -G prints it.
func (t *Target) ProxyCommandLine() (string, error) {
	k := t.HostKeyAlias
	if k == "" {
		k = t.Alias
	}
	tk := tokens{'h': t.HostName, 'p': strconv.Itoa(t.Port), 'r': t.User, 'n': t.Alias, 'k': k}
	line, err := tk.expand(t.ProxyCommand, false, nil)
	if err != nil {
		return "", fmt.Errorf("ProxyCommand: %w", err)
	}
	return line, nil
}

// KnownHostsCommandArgv is KnownHostsCommand as ssh runs it to look up
// name (the known_hosts name, %H) for invocation ("HOSTNAME" or
// "ADDRESS", %I): split into words as argv_split does, each word after the
// first expanded with the connection's tokens, %t, %f and %K (the key's
// type, SHA256 fingerprint and base64 blob, "NONE" without a key) and
// ${NAME}.
func (t *Target) KnownHostsCommandArgv(name, invocation, keyType, fingerprint, keyText string) ([]string, error) {
	argv, err := splitWords(t.KnownHostsCommand, false)
	if err != nil {
		return nil, fmt.Errorf("KnownHostsCommand %q: %w", t.KnownHostsCommand, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("KnownHostsCommand %q yielded no arguments", t.KnownHostsCommand)
	}
	tk := make(tokens, len(t.connTokens)+5)
	for k, v := range t.connTokens {
		tk[k] = v
	}
	none := func(v string) string {
		if v == "" {
			return "NONE"
		}
		return v
	}
	tk['H'], tk['I'], tk['t'], tk['f'], tk['K'] = name, invocation, none(keyType), none(fingerprint), none(keyText)
	getenv := t.getenv
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	for i := 1; i < len(argv); i++ {
		if argv[i], err = tk.expand(argv[i], true, getenv); err != nil {
			return nil, fmt.Errorf("KnownHostsCommand: %w", err)
		}
	}
	return argv, nil
}

// connTokens are the tokens OpenSSH's default_client_percent_expand
// offers to IdentityFile, CertificateFile, IdentityAgent,
// UserKnownHostsFile and RemoteCommand; Match exec takes them less %j.
func (r *resolver) connTokens(host, port, remoteUser, keyAlias, jumpHost string) tokens {
	short, _, _ := strings.Cut(r.localHost, ".")
	return tokens{
		'C': connectionHash(r.localHost, host, port, remoteUser),
		'L': short,
		'i': r.uid,
		'k': keyAlias,
		'l': r.localHost,
		'n': r.alias,
		'p': port,
		'd': r.home,
		'h': host,
		'r': remoteUser,
		'u': r.localUser,
		'j': jumpHost,
	}
}

// controlPathTokens are the letters ControlPath takes in OpenSSH 9.2:
// DEFAULT_CLIENT_PERCENT_EXPAND_ARGS, which has no %j (ssh 9.2 refuses a
// ControlPath with %j as an unknown key).
const controlPathTokens = "CLiklnpdhru"

// connectionHash is %C: the SHA-1 of %l%h%p%r, as ssh_connection_hash.
func connectionHash(local, host, port, remoteUser string) string {
	sum := sha1.Sum([]byte(local + host + port + remoteUser))
	return hex.EncodeToString(sum[:])
}

// tildeExpand is OpenSSH's tilde_expand_filename: "~" and "~/x" are the
// home directory, "~name/x" is that user's. Like ssh, a "~" not followed by
// a slash ("~foo") is taken as the home directory joined with "foo".
func tildeExpand(path, home string) (string, error) {
	if !strings.HasPrefix(path, "~") {
		return path, nil
	}
	rest := path[1:]
	dir := home
	if slash := strings.IndexByte(rest, '/'); slash > 0 {
		name := rest[:slash]
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("no such user %q in %q", name, path)
		}
		dir = u.HomeDir
		rest = rest[slash+1:]
	} else if slash == 0 {
		rest = rest[1:]
	}
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return dir + rest, nil
}

// expandPath applies ~, then tokens and ${ENV}, as ssh does to
// IdentityFile, CertificateFile, IdentityAgent and UserKnownHostsFile.
func (r *resolver) expandPath(p string, t tokens) (string, error) {
	p, err := tildeExpand(p, r.home)
	if err != nil {
		return "", err
	}
	return t.expand(p, true, r.getenv)
}
