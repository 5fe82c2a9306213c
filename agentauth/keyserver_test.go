package agentauth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// remoteDial makes a name that is not loopback reach 127.0.0.1, so that
// the rules for remote key servers can be tested on this machine.
func remoteDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

// Which endpoint is used, and when a failure of HTTPS must not lead to
// plain HTTP.
func TestKeyServerEndpoint(t *testing.T) {
	srv := sshtest.StartPyServer(t, sshtest.PyServerConfig{TLS: true, RateLimit: 1000})
	closed := sshtest.FreePort(t)
	ca := caPool(t, srv.CAFile)
	cases := []struct {
		name      string
		host      string // "example.com" is in httptest's certificate
		httpsPort int
		ca        bool
		allowHTTP bool
		want      string // the scheme used, or "" for an error
		wantErr   string
		wantHint  string
	}{
		{"loopback without HTTPS uses HTTP", "127.0.0.1", closed, false, false, "http", "", ""},
		{"localhost without HTTPS uses HTTP", "localhost", closed, false, false, "http", "", ""},
		{"loopback HTTPS with its CA", "127.0.0.1", srv.HTTPSPort, true, false, "https", "", ""},
		{"loopback HTTPS with an unknown certificate is no reason for HTTP", "127.0.0.1", srv.HTTPSPort, false, false, "",
			"certificate", "--key-server-ca"},
		{"an unknown certificate with HTTP allowed", "127.0.0.1", srv.HTTPSPort, false, true, "http", "", ""},
		{"remote HTTPS with its CA", "example.com", srv.HTTPSPort, true, false, "https", "", ""},
		{"remote without HTTPS refuses HTTP", "example.com", closed, false, false, "",
			"Connection refused", "--key-server-insecure-http"},
		{"remote without HTTPS, HTTP allowed", "example.com", closed, false, true, "http", "", ""},
		{"remote with an unknown certificate refuses HTTP", "example.com", srv.HTTPSPort, false, false, "",
			"certificate", "--key-server-ca"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(srv.Requests())
			k := &KeyServer{Host: c.host, HTTPSPort: c.httpsPort, HTTPPort: srv.KeyServerPort, AllowHTTP: c.allowHTTP}
			if c.ca {
				k.RootCAs = ca
			}
			if c.host != "127.0.0.1" && c.host != "localhost" {
				k.DialContext = remoteDial
			}
			key, err := k.ServerKey(context.Background())
			reqs := srv.Requests()[before:]
			if c.want == "" {
				var kerr *KeyServerError
				if !errors.As(err, &kerr) {
					t.Fatalf("err = %v, want a *KeyServerError", err)
				}
				if !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(kerr.Hint(), c.wantHint) {
					t.Fatalf("err = %v\nhint = %s\nwant %q and a hint with %q", err, kerr.Hint(), c.wantErr, c.wantHint)
				}
				if len(reqs) != 0 {
					t.Fatalf("the key server saw %q after the HTTPS failure", reqs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !keysEqual(key, srv.HostKey()) {
				t.Fatal("the server key differs from the server's")
			}
			if want := []string{"GET " + c.want + " /server_pub_key"}; !slices.Equal(reqs, want) {
				t.Fatalf("requests %q, want %q", reqs, want)
			}
			if !strings.HasPrefix(k.URL(), c.want+"://") {
				t.Fatalf("URL() = %q", k.URL())
			}
			// Register goes where the key came from.
			pub, _ := ssh.ParsePublicKey(srv.HostKey().Marshal())
			if err := k.Register(context.Background(), pub); err != nil {
				t.Fatal(err)
			}
			if got := srv.Requests()[before+1]; got != "POST "+c.want+" /register" {
				t.Fatalf("register went to %q", got)
			}
		})
	}
}

// Every error status gets a message with the server's words and a hint.
func TestKeyServerErrors(t *testing.T) {
	cases := []struct {
		name     string
		path     string
		status   int
		message  string
		wantErr  string
		wantHint string
	}{
		{"415", "/register", 415, "Content-Type must be application/json", "415 Unsupported Media Type: Content-Type must be application/json", "Content-Type: application/json"},
		{"400 invalid JSON", "/register", 400, "Invalid JSON data", "400 Bad Request: Invalid JSON data", "--key-server-port"},
		{"400 missing key", "/register", 400, "Missing client_pub_key parameter", "400 Bad Request: Missing client_pub_key parameter", "--key-server-port"},
		{"400 failed", "/register", 400, "Failed to register key", "400 Bad Request: Failed to register key", "could not store the client key"},
		{"429", "/server_pub_key", 429, "Rate limit exceeded. Try again later.", "429 Too Many Requests: Rate limit exceeded. Try again later.", "wait a minute and try again"},
		{"500", "/register", 500, "boom", "500 Internal Server Error: boom", "its log says why"},
		{"404", "/server_pub_key", 404, "Not Found", "404 Not Found", "does not speak"},
		{"other", "/register", 418, "teapot", "418 I'm a teapot: teapot", "does not speak"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := sshtest.StartPyServer(t, sshtest.PyServerConfig{RateLimit: 1000, Fault: func(r *http.Request) (int, string, bool) {
				return c.status, c.message, r.URL.Path == c.path
			}})
			k := &KeyServer{Host: "127.0.0.1", HTTPSPort: sshtest.FreePort(t), HTTPPort: srv.KeyServerPort}
			_, err := k.ServerKey(context.Background())
			if err == nil {
				err = k.Register(context.Background(), srv.HostKey())
			}
			var kerr *KeyServerError
			if !errors.As(err, &kerr) {
				t.Fatalf("err = %v, want a *KeyServerError", err)
			}
			if !strings.HasPrefix(err.Error(), "key server ") || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err = %v, want %q", err, c.wantErr)
			}
			if !strings.Contains(kerr.Hint(), c.wantHint) {
				t.Errorf("hint = %q, want %q", kerr.Hint(), c.wantHint)
			}
		})
	}
}

// The real rate limit, reached through the API: the 429 says to wait.
func TestKeyServerRateLimited(t *testing.T) {
	srv := sshtest.StartPyServer(t, sshtest.PyServerConfig{})
	k := &KeyServer{Host: "127.0.0.1", HTTPSPort: sshtest.FreePort(t), HTTPPort: srv.KeyServerPort}
	var err error
	for i := 0; i < 11 && err == nil; i++ {
		_, err = k.ServerKey(context.Background())
	}
	var kerr *KeyServerError
	if !errors.As(err, &kerr) || kerr.Status != 429 || !strings.Contains(kerr.Hint(), "wait") {
		t.Fatalf("err = %v, want a 429 with advice to wait", err)
	}
}

func TestKeyServerConnectionRefused(t *testing.T) {
	k := &KeyServer{Host: "127.0.0.1", HTTPSPort: sshtest.FreePort(t), HTTPPort: sshtest.FreePort(t)}
	_, err := k.ServerKey(context.Background())
	var kerr *KeyServerError
	if !errors.As(err, &kerr) || !strings.Contains(err.Error(), "Connection refused") || !strings.Contains(kerr.Hint(), "--key-server-port") {
		t.Fatalf("err = %v, want Connection refused with a hint", err)
	}
}

// A redirect from HTTPS to plain HTTP is the downgrade in another form.
func TestKeyServerRefusesDowngradeRedirect(t *testing.T) {
	srv := sshtest.StartPyServer(t, sshtest.PyServerConfig{RateLimit: 1000})
	plain := "http://127.0.0.1:" + strconv.Itoa(srv.KeyServerPort)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain+r.URL.Path, http.StatusFound)
	}))
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	k := &KeyServer{Host: "127.0.0.1", HTTPSPort: ts.Listener.Addr().(*net.TCPAddr).Port, HTTPPort: srv.KeyServerPort, RootCAs: pool}
	_, err := k.ServerKey(context.Background())
	var kerr *KeyServerError
	if !errors.As(err, &kerr) || !strings.Contains(err.Error(), "refusing a redirect from HTTPS to "+plain) || kerr.Hint() == "" {
		t.Fatalf("err = %v, want the redirect refused", err)
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Fatalf("the plain endpoint saw %q", reqs)
	}
}

func TestPinHostKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m2m-ssh", "known_hosts")
	tgt := &sshcfg.Target{Alias: "127.0.0.1", HostName: "127.0.0.1", Port: 8022}
	first := sshtest.Keygen(t, dir, "first", sshtest.KeyOptions{})
	second := sshtest.Keygen(t, dir, "second", sshtest.KeyOptions{Type: "ecdsa"})
	parse := func(line string) ssh.PublicKey {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	added, err := PinHostKey(tgt, file, parse(first.Public), "http://127.0.0.1:8000")
	if err != nil || !added {
		t.Fatalf("first pin: added=%v err=%v", added, err)
	}
	added, err = PinHostKey(tgt, file, parse(first.Public), "http://127.0.0.1:8000")
	if err != nil || added {
		t.Fatalf("same key again: added=%v err=%v", added, err)
	}
	// Another port is another server.
	other := &sshcfg.Target{Alias: "127.0.0.1", HostName: "127.0.0.1", Port: 8023}
	if added, err := PinHostKey(other, file, parse(second.Public), "x"); err != nil || !added {
		t.Fatalf("other port: added=%v err=%v", added, err)
	}
	_, err = PinHostKey(tgt, file, parse(second.Public), "http://127.0.0.1:8000")
	var herr *HostKeyError
	if !errors.As(err, &herr) || herr.Problem != HostKeyChanged {
		t.Fatalf("err = %v, want a changed host key", err)
	}
	for _, want := range []string{"Host key verification failed", "http://127.0.0.1:8000", file + ":1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if want := `'ssh-keygen -R "[127.0.0.1]:8022" -f ` + file + `'`; !strings.Contains(herr.Hint(), want) {
		t.Errorf("hint = %q, want %q", herr.Hint(), want)
	}
	data, _ := os.ReadFile(file)
	if n := strings.Count(string(data), "\n"); n != 2 {
		t.Errorf("the file has %d lines, want 2:\n%s", n, data)
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}

func TestClientPublicKey(t *testing.T) {
	dir := t.TempDir()
	plain := sshtest.Keygen(t, dir, "plain", sshtest.KeyOptions{Comment: "user@box"})
	enc := sshtest.Keygen(t, dir, "enc", sshtest.KeyOptions{Passphrase: "secret"})
	pemEnc := sshtest.Keygen(t, dir, "pem", sshtest.KeyOptions{Type: "ecdsa", Passphrase: "secret", PEM: true})
	for _, k := range []sshtest.Key{plain, enc, pemEnc} {
		if err := os.Remove(k.Path + ".pub"); err != nil {
			t.Fatal(err)
		}
	}
	want := func(k sshtest.Key) ssh.PublicKey {
		pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(k.Public))
		return pub
	}
	cases := []struct {
		name       string
		key        sshtest.Key
		passphrase string
		wantErr    string
	}{
		{"plain", plain, "", ""},
		{"encrypted OpenSSH key needs no passphrase", enc, "", ""},
		{"encrypted PEM key with passphrase", pemEnc, "secret", ""},
		{"encrypted PEM key without", pemEnc, "", "passphrase protected"},
		{"encrypted PEM key, wrong passphrase", pemEnc, "nope", "cannot decrypt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pub, err := ClientPublicKey(c.key.Path, []byte(c.passphrase))
			if c.wantErr != "" {
				var kf *KeyFileError
				if !errors.As(err, &kf) || !strings.Contains(err.Error(), c.wantErr) || kf.Hint() == "" {
					t.Fatalf("err = %v, want %q with a hint", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !keysEqual(pub, want(c.key)) {
				t.Fatal("wrong public key")
			}
		})
	}
}

// The key is registered without its comment, or the server would never
// match it.
func TestRegisterWithoutComment(t *testing.T) {
	srv := sshtest.StartPyServer(t, sshtest.PyServerConfig{RateLimit: 1000})
	dir := t.TempDir()
	key := sshtest.Keygen(t, dir, "id", sshtest.KeyOptions{Comment: "alice@laptop"})
	pub, err := ClientPublicKey(key.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := &KeyServer{Host: "127.0.0.1", HTTPSPort: sshtest.FreePort(t), HTTPPort: srv.KeyServerPort}
	if err := k.Register(context.Background(), pub); err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(key.Public, " alice@laptop")
	if got := srv.Registered(); len(got) != 1 || got[0] != want {
		t.Fatalf("registered %q, want %q", got, want)
	}
}
