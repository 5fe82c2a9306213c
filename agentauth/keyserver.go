package agentauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// KeyServer is the HTTP API that m2m-mcp-server-ssh-server runs beside its
// SSH server: GET /server_pub_key hands out the server's host key and
// POST /register authorizes a client key. The API has no authentication
// of its own, so the transport decides how far its answer can be trusted:
// HTTPS is tried first; plain HTTP is used only for a loopback host or
// when AllowHTTP says the user accepts it, and never because HTTPS failed
// its certificate check unless AllowHTTP is set.
type KeyServer struct {
	Host string
	// HTTPSPort is the port of the HTTPS endpoint; 0 means 443.
	HTTPSPort int
	// HTTPPort is the port of the plain-HTTP endpoint (--key-server-port).
	HTTPPort int
	// AllowHTTP lets plain HTTP be used for a host that is not a loopback
	// address, after HTTPS fails for any reason.
	AllowHTTP bool
	// RootCAs verifies the HTTPS endpoint; nil means the system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds each request; 0 means 15 s.
	Timeout time.Duration
	// DialContext, when set, opens the TCP connections (tests map a
	// remote-looking name to 127.0.0.1 with it).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger      *slog.Logger

	base   string // the endpoint chosen by the first request
	client *http.Client
}

// keyServerBody bounds what is read of an answer: the API's bodies are a
// few hundred bytes.
const keyServerBody = 64 << 10

// ServerKey fetches the server's host key, choosing the endpoint that the
// later Register uses.
func (k *KeyServer) ServerKey(ctx context.Context) (ssh.PublicKey, error) {
	var answer struct {
		Key string `json:"server_pub_key"`
	}
	u, err := k.call(ctx, http.MethodGet, "/server_pub_key", nil, &answer)
	if err != nil {
		return nil, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(answer.Key))
	if err != nil {
		return nil, &KeyServerError{Method: http.MethodGet, URL: u, Status: http.StatusOK,
			Message: "the answer holds no usable server_pub_key", Err: err,
			hint: "the key server at " + u + " does not speak m2m-mcp-server-ssh-server's API: check --host and --key-server-port"}
	}
	return key, nil
}

// Register authorizes pub on the server. The key is sent without a
// comment: the server compares whole lines.
func (k *KeyServer) Register(ctx context.Context, pub ssh.PublicKey) error {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	body, err := json.Marshal(map[string]string{"client_pub_key": line})
	if err != nil {
		return err
	}
	var answer struct {
		Status string `json:"status"`
	}
	u, err := k.call(ctx, http.MethodPost, "/register", body, &answer)
	if err != nil {
		return err
	}
	if answer.Status != "success" {
		return &KeyServerError{Method: http.MethodPost, URL: u, Status: http.StatusOK,
			Message: fmt.Sprintf("unexpected status %q", answer.Status),
			hint:    "the key server at " + u + " does not speak m2m-mcp-server-ssh-server's API: check --host and --key-server-port"}
	}
	return nil
}

// URL is the endpoint in use, once a request has been made.
func (k *KeyServer) URL() string { return k.base }

func (k *KeyServer) log() *slog.Logger {
	if k.Logger == nil {
		return discardLog
	}
	return k.Logger
}

// call makes one request and decodes a 200 answer into out. The first
// call chooses the endpoint: HTTPS, or plain HTTP where allowed.
func (k *KeyServer) call(ctx context.Context, method, path string, body []byte, out any) (string, error) {
	if k.client == nil {
		k.client = k.newClient()
	}
	if k.base != "" {
		return k.do(ctx, method, k.base+path, body, out)
	}
	secure := "https://" + hostPort(k.Host, k.HTTPSPort, 443)
	u, err := k.do(ctx, method, secure+path, body, out)
	var kerr *KeyServerError
	if err == nil || errors.As(err, &kerr) && kerr.Status != 0 {
		// An HTTP answer, even an error, means HTTPS works: stay on it.
		k.base = secure
		return u, err
	}
	plain := "http://" + hostPort(k.Host, k.HTTPPort, 80)
	switch {
	case k.AllowHTTP:
		k.log().Warn("the key server over HTTPS failed; using plain HTTP as allowed: anyone on the network path could substitute the server's key",
			"https", secure, "http", plain, "err", kerr.Err)
	case isLoopback(k.Host) && !isCertError(err):
		k.log().Info("no HTTPS key server on the loopback host; using plain HTTP", "https", secure, "http", plain, "err", kerr.Err)
	default:
		kerr.hint = k.httpsHint(kerr.Err)
		return u, kerr
	}
	k.base = plain
	return k.do(ctx, method, plain+path, body, out)
}

func (k *KeyServer) httpsHint(err error) string {
	plain := fmt.Sprintf("plain HTTP on port %d with --key-server-insecure-http (anyone on the network path could then substitute the server's key)", k.HTTPPort)
	if isCertError(err) {
		return "give the CA certificate that signed the key server's certificate with --key-server-ca FILE, or allow " + plain
	}
	return fmt.Sprintf("serve the key server over HTTPS on %s, or, if you trust every network between here and %s, allow %s; "+
		"or skip the key server: put the server's key in a file with 'ssh-keyscan' after checking its fingerprint and give it with --known-hosts",
		hostPort(k.Host, k.HTTPSPort, 443), k.Host, plain)
}

func (k *KeyServer) newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: k.RootCAs, MinVersion: tls.VersionTLS12}
	if k.DialContext != nil {
		tr.DialContext = k.DialContext
		tr.Proxy = nil
	}
	return &http.Client{
		Transport: tr,
		// A redirect from HTTPS to plain HTTP would be the downgrade that
		// the endpoint choice avoids.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
				return http.ErrUseLastResponse // reported by statusError
			}
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

func (k *KeyServer) do(ctx context.Context, method, u string, body []byte, out any) (string, error) {
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return u, &KeyServerError{Method: method, URL: u, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	k.log().Debug("key server request", "method", method, "url", u)
	resp, err := k.client.Do(req)
	if err != nil {
		return u, &KeyServerError{Method: method, URL: u, Err: unwrapURLError(err),
			hint: fmt.Sprintf("check that the key server runs at %s and that --host and --key-server-port are right", u)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, keyServerBody))
	if err != nil {
		return u, &KeyServerError{Method: method, URL: u, Status: resp.StatusCode, Message: "reading the answer", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return u, statusError(method, u, resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return u, &KeyServerError{Method: method, URL: u, Status: resp.StatusCode, Message: "the answer is not JSON", Err: err,
			hint: "the key server at " + u + " does not speak m2m-mcp-server-ssh-server's API: check --host and --key-server-port"}
	}
	return u, nil
}

// statusError explains an error status of the API.
func statusError(method, u string, resp *http.Response, body []byte) *KeyServerError {
	e := &KeyServerError{Method: method, URL: u, Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	var answer struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &answer) == nil && answer.Error != "" {
		e.Message = answer.Error
	} else {
		e.Message = excerpt(body)
	}
	api := "the key server at " + u + " does not speak m2m-mcp-server-ssh-server's API as m2m-ssh knows it: check --host and --key-server-port, and the versions of both"
	switch {
	case e.Status >= 300 && e.Status < 400:
		e.Message = "refusing a redirect from HTTPS to " + resp.Header.Get("Location")
		e.hint = "the key server must answer over HTTPS itself: following it to plain HTTP would let anyone on the network path substitute the server's key"
	case e.Status == http.StatusTooManyRequests:
		wait := "a minute"
		if e.RetryAfter != "" {
			if s, err := strconv.Atoi(e.RetryAfter); err == nil {
				wait = fmt.Sprintf("%d s", s)
			} else {
				wait = "until " + e.RetryAfter
			}
		}
		e.hint = fmt.Sprintf("the key server allows 10 requests a minute from one address, and each start of m2m-ssh makes two: wait %s and try again; "+
			"if an MCP host keeps restarting m2m-ssh, look at why in its log", wait)
	case e.Status == http.StatusUnsupportedMediaType:
		e.hint = api + " (m2m-ssh sends Content-Type: application/json; a proxy in between may rewrite it)"
	case e.Status == http.StatusBadRequest && strings.Contains(e.Message, "Failed to register"):
		e.hint = "the server could not store the client key: its log says why (its authorized keys file must be writable by it)"
	case e.Status == http.StatusBadRequest:
		e.hint = api
	case e.Status == http.StatusNotFound, e.Status == http.StatusMethodNotAllowed:
		e.hint = api
	case e.Status >= 500:
		e.hint = "the key server failed: its log says why; try again once it is fixed"
	default:
		e.hint = api
	}
	return e
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// KeyServerError is a failed request to the key server: no answer
// (Status 0), or an error status with the server's message.
type KeyServerError struct {
	Method     string
	URL        string
	Status     int
	Message    string // the "error" of the answer's JSON, or what went wrong with it
	RetryAfter string // the Retry-After header of a 429
	Err        error
	hint       string
}

func (e *KeyServerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "key server %s %s", e.Method, e.URL)
	switch {
	case e.Status == 0 && errors.Is(e.Err, syscall.ECONNREFUSED):
		b.WriteString(": Connection refused") // the words users search for
		return b.String()
	case e.Status == 0:
	case e.Status == http.StatusOK:
		fmt.Fprintf(&b, ": %s", e.Message)
	default:
		fmt.Fprintf(&b, " answered %d %s", e.Status, http.StatusText(e.Status))
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *KeyServerError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *KeyServerError) Hint() string { return e.hint }

// hostPort joins host and port, leaving out the scheme's default port.
func hostPort(host string, port, def int) string {
	if port == 0 {
		port = def
	}
	if port == def {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// isLoopback reports whether host names this machine without a network
// in between: "localhost" or a loopback address literal.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isCertError reports whether err is a TLS certificate that did not
// verify: a server answered HTTPS, so falling back to plain HTTP would be
// a downgrade rather than a missing endpoint.
func isCertError(err error) bool {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// PinHostKey trusts key, handed out by the key server at source, for t's
// known_hosts name in file: the first key seen is recorded there (trust on
// first use), and later runs must be handed the same key. A different key
// is refused with a *HostKeyError whose hint says how to accept a
// legitimate rotation.
func PinHostKey(t *sshcfg.Target, file string, key ssh.PublicKey, source string) (added bool, err error) {
	name := t.KnownHostsName()
	text := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	var pinned []KnownKey
	n, err := appendKnownHost(file, text, func(data []byte) bool {
		db := &knownHosts{}
		db.read(bytes.NewReader(data), file, &badLines{})
		for _, l := range db.lines {
			if l.marker != "" || !l.matches(name) {
				continue
			}
			if keysEqual(l.key, key) {
				return true
			}
			pinned = append(pinned, l.known())
		}
		return len(pinned) > 0
	})
	if err != nil {
		return false, err
	}
	if len(pinned) > 0 {
		// A pinned key elsewhere in the file (another line for the same
		// name) still counts as trusted.
		return false, &HostKeyError{
			Problem:        HostKeyChanged,
			Alias:          t.Alias,
			Name:           name,
			Type:           key.Type(),
			Fingerprint:    ssh.FingerprintSHA256(key),
			Known:          pinned,
			KnownHostsFile: file,
			Err:            fmt.Errorf("the key server at %s now hands out a key other than the one pinned on first use", source),
		}
	}
	return n > 0, nil
}

// ClientPublicKey is the public key of the private key file path, read
// from path.pub when present, else from the key itself (an encrypted
// OpenSSH key shows its public key without the passphrase).
func ClientPublicKey(path string, passphrase []byte) (ssh.PublicKey, error) {
	if pub, err := readPublicKeyFile(path + ".pub"); err == nil {
		return pub, nil
	}
	// Only the public half is wanted, so loose permissions do not matter.
	data, err := readPrivateKeyFile(path, false)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	signer, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return signer.PublicKey(), nil
	}
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if missing.PublicKey != nil {
			return missing.PublicKey, nil
		}
		if len(passphrase) > 0 {
			if signer, err = ssh.ParsePrivateKeyWithPassphrase(data, passphrase); err == nil {
				return signer.PublicKey(), nil
			}
			return nil, &KeyFileError{Path: path, Reason: "cannot decrypt it", Err: err,
				hint: "check the passphrase given with --passphrase or M2M_SSH_PASSPHRASE"}
		}
		return nil, &KeyFileError{Path: path, Reason: "passphrase protected, and no passphrase given",
			hint: "give the passphrase with --passphrase or M2M_SSH_PASSPHRASE, or put the public key beside it as " + path + ".pub"}
	}
	return nil, &KeyFileError{Path: path, Reason: "not a private key this program can use", Err: err,
		hint: "give an OpenSSH or PEM private key (ed25519, ecdsa or rsa); convert others with 'ssh-keygen -p -f FILE'"}
}
