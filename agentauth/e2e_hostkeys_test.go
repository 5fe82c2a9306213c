package agentauth

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
	"golang.org/x/crypto/ssh"
)

// hostKeyRig is an sshd with an authorized client key, for host key tests.
type hostKeyRig struct {
	srv *sshtest.SSHD
	key sshtest.Key
}

func newHostKeyRig(t *testing.T, c sshtest.SSHDConfig) *hostKeyRig {
	t.Helper()
	key := sshtest.Keygen(t, t.TempDir(), "id_ed25519", sshtest.KeyOptions{})
	c.AuthorizedKeys = append(c.AuthorizedKeys, key.Public)
	return &hostKeyRig{srv: sshtest.StartSSHD(t, c), key: key}
}

// target has the rig's client key and known_hosts lines in a fresh file.
func (r *hostKeyRig) target(t *testing.T, knownHosts ...string) *sshcfg.Target {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if knownHosts != nil {
		kh = sshtest.WriteFile(t, filepath.Dir(kh), "known_hosts", knownHosts...)
	}
	return &sshcfg.Target{
		Alias: "box", HostName: r.srv.Host, Port: r.srv.Port, User: r.srv.User,
		IdentityAgent: "none", IdentityFiles: []string{r.key.Path},
		StrictHostKeyChecking: "yes", UserKnownHostsFiles: []string{kh},
	}
}

// openssh runs OpenSSH's own client against the rig with the given
// known_hosts file and options, strict checking on.
func (r *hostKeyRig) openssh(t *testing.T, knownHosts string, opts ...string) error {
	t.Helper()
	bin := sshtest.LookPath(t, "ssh")
	args := []string{"-F", "none", "-p", strconv.Itoa(r.srv.Port), "-i", r.key.Path,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null"}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	args = append(args, r.srv.User+"@"+r.srv.Host, "echo", "openssh-ok")
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "openssh-ok") {
		return fmt.Errorf("ssh: %v\n%s", err, out)
	}
	return nil
}

func wantHostKeyProblem(t *testing.T, err error, want HostKeyProblem) *HostKeyError {
	t.Helper()
	var herr *HostKeyError
	if !errors.As(err, &herr) || herr.Problem != want {
		t.Fatalf("login = %v, want HostKeyError problem %d", err, want)
	}
	if !strings.Contains(err.Error(), "Host key verification failed") || herr.Hint() == "" {
		t.Errorf("error %q, hint %q", err, herr.Hint())
	}
	return herr
}

func TestE2EKnownHostsForms(t *testing.T) {
	r := newHostKeyRig(t, sshtest.SSHDConfig{})
	hostKey := r.srv.HostKeys[0]
	port := strconv.Itoa(r.srv.Port)
	keygen := sshtest.LookPath(t, "ssh-keygen")

	t.Run("hashed", func(t *testing.T) {
		tgt := r.target(t, r.srv.KnownHosts()...)
		sshtest.Run(t, keygen, "-q", "-H", "-f", tgt.UserKnownHostsFiles[0])
		data, _ := os.ReadFile(tgt.UserKnownHostsFiles[0])
		if !strings.HasPrefix(string(data), "|1|") {
			t.Fatalf("not hashed: %s", data)
		}
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wildcard on a non-22 port", func(t *testing.T) {
		tgt := r.target(t, "[127.0.0.*]:* "+hostKey)
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("negated", func(t *testing.T) {
		tgt := r.target(t, "[127.0.0.*]:*,![127.0.0.1]:"+port+" "+hostKey)
		wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostUnknown)
	})
	t.Run("second file, malformed first", func(t *testing.T) {
		tgt := r.target(t, "garbage line here", "@cert-authority")
		good := sshtest.WriteFile(t, t.TempDir(), "global", r.srv.KnownHosts()...)
		tgt.GlobalKnownHostsFiles = []string{filepath.Join(t.TempDir(), "absent"), good}
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("HostKeyAlias, as OpenSSH reads it", func(t *testing.T) {
		// OpenSSH looks an alias up verbatim, without the port.
		tgt := r.target(t, "buildbox-alias "+hostKey)
		tgt.HostKeyAlias = "buildbox-alias"
		if err := login(t, tgt, IdentityOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := r.openssh(t, tgt.UserKnownHostsFiles[0], "HostKeyAlias=buildbox-alias"); err != nil {
			t.Fatalf("OpenSSH disagrees: %v", err)
		}
		tgt.HostKeyAlias = "other-alias"
		herr := wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostUnknown)
		if strings.Contains(herr.Hint(), "ssh-keyscan") {
			t.Errorf("keyscan would record the wrong name under HostKeyAlias: %s", herr.Hint())
		}
	})
	t.Run("revoked", func(t *testing.T) {
		tgt := r.target(t, append(r.srv.KnownHosts(), "@revoked * "+hostKey)...)
		tgt.StrictHostKeyChecking = "no"
		herr := wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostKeyRevoked)
		if !strings.Contains(herr.Error(), tgt.UserKnownHostsFiles[0]+":2") {
			t.Errorf("error does not name the @revoked line: %v", herr)
		}
	})
	t.Run("changed", func(t *testing.T) {
		other, _ := os.ReadFile(fixture("other_ed25519.pub"))
		line := fmt.Sprintf("[%s]:%d %s", r.srv.Host, r.srv.Port, strings.TrimSpace(string(other)))
		for _, policy := range []string{"yes", "ask", "accept-new", "no"} {
			tgt := r.target(t, "# old key", line)
			tgt.StrictHostKeyChecking = policy
			herr := wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostKeyChanged)
			for _, want := range []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", tgt.UserKnownHostsFiles[0] + ":2"} {
				if !strings.Contains(herr.Error(), want) {
					t.Errorf("%s: error lacks %q: %v", policy, want, herr)
				}
			}
			if !strings.Contains(herr.Hint(), "ssh-keygen -R") {
				t.Errorf("hint = %q", herr.Hint())
			}
		}
	})
	t.Run("ask refuses with fingerprint and command", func(t *testing.T) {
		tgt := r.target(t)
		tgt.StrictHostKeyChecking = "ask"
		herr := wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostUnknown)
		pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(hostKey))
		if !strings.Contains(herr.Error(), ssh.FingerprintSHA256(pub)) {
			t.Errorf("error lacks the fingerprint: %v", herr)
		}
		want := fmt.Sprintf("ssh-keyscan -p %d %s >> %s", r.srv.Port, r.srv.Host, tgt.UserKnownHostsFiles[0])
		if !strings.Contains(herr.Hint(), want) {
			t.Errorf("hint lacks %q: %s", want, herr.Hint())
		}
	})
	t.Run("no", func(t *testing.T) {
		tgt := r.target(t)
		tgt.StrictHostKeyChecking = "no"
		log, buf := newLog()
		if err := login(t, tgt, IdentityOptions{Logger: log}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "level=WARN") {
			t.Errorf("no warning:\n%s", buf)
		}
	})
}

// TestE2EAcceptNew records an unknown host and checks that OpenSSH's own
// client, strict, accepts the line written.
func TestE2EAcceptNew(t *testing.T) {
	r := newHostKeyRig(t, sshtest.SSHDConfig{})
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			tgt := r.target(t)
			kh := filepath.Join(t.TempDir(), "new", ".ssh", "known_hosts")
			tgt.UserKnownHostsFiles = []string{kh}
			tgt.StrictHostKeyChecking, tgt.HashKnownHosts = "accept-new", hashed
			log, buf := newLog()
			if err := login(t, tgt, IdentityOptions{Logger: log}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "permanently added") {
				t.Errorf("no log of the addition:\n%s", buf)
			}
			if err := r.openssh(t, kh); err != nil {
				t.Fatalf("OpenSSH refuses the recorded line: %v", err)
			}
			tgt.StrictHostKeyChecking = "yes"
			if err := login(t, tgt, IdentityOptions{}); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(kh)
			if n := strings.Count(string(data), "\n"); n != 1 {
				t.Errorf("%d lines after two logins:\n%s", n, data)
			}
		})
	}
}

// TestE2EHostKeyAlgorithmOrder: the server has ed25519, ecdsa and rsa host
// keys and prefers ed25519; known_hosts holds only its rsa key.
func TestE2EHostKeyAlgorithmOrder(t *testing.T) {
	r := newHostKeyRig(t, sshtest.SSHDConfig{HostKeyTypes: []string{"ed25519", "ecdsa", "rsa"}})
	for i, want := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoRSASHA512} {
		tgt := r.target(t, r.srv.KnownHosts()[i])
		got, err := loginKey(t, tgt, IdentityOptions{})
		if err != nil {
			t.Fatalf("known by its %s key: %v", want, err)
		}
		if typ, _ := algoKeyType(want); got != typ {
			t.Errorf("server presented %s, want %s", got, typ)
		}
	}
}

// TestE2EHostCertificate: the server presents a host certificate signed by
// a CA in a @cert-authority line; no plain key of it is known.
func TestE2EHostCertificate(t *testing.T) {
	dir := t.TempDir()
	keygen := sshtest.LookPath(t, "ssh-keygen")
	ca := sshtest.Keygen(t, dir, "host_ca", sshtest.KeyOptions{})
	certified := func(t *testing.T, principal, validity string) *hostKeyRig {
		hk := sshtest.Keygen(t, t.TempDir(), "ssh_host_ecdsa_key", sshtest.KeyOptions{Type: "ecdsa", Comment: "host"})
		sshtest.Run(t, keygen, "-q", "-s", ca.Path, "-h", "-I", "host", "-n", principal, "-V", validity, hk.Path+".pub")
		return newHostKeyRig(t, sshtest.SSHDConfig{Extra: []string{"HostKey " + hk.Path, "HostCertificate " + hk.Path + "-cert.pub"}})
	}
	caLine := "@cert-authority 127.0.0.1,[127.0.0.1]:* " + ca.Public

	t.Run("trusted", func(t *testing.T) {
		r := certified(t, "127.0.0.1", "-5m:+1h")
		got, err := loginKey(t, r.target(t, caLine), IdentityOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got != ssh.CertAlgoECDSA256v01 {
			t.Errorf("server presented %s, want its certificate", got)
		}
	})
	t.Run("wrong principal", func(t *testing.T) {
		r := certified(t, "elsewhere.example", "-5m:+1h")
		wantHostKeyProblem(t, login(t, r.target(t, caLine), IdentityOptions{}), HostCertInvalid)
	})
	t.Run("expired", func(t *testing.T) {
		r := certified(t, "127.0.0.1", "20200101:20200102")
		wantHostKeyProblem(t, login(t, r.target(t, caLine), IdentityOptions{}), HostCertInvalid)
	})
	t.Run("revoked CA", func(t *testing.T) {
		r := certified(t, "127.0.0.1", "-5m:+1h")
		wantHostKeyProblem(t, login(t, r.target(t, caLine, "@revoked * "+ca.Public), IdentityOptions{}), HostKeyRevoked)
	})
	t.Run("no CA line: the plain key decides", func(t *testing.T) {
		r := certified(t, "127.0.0.1", "-5m:+1h")
		tgt := r.target(t)
		wantHostKeyProblem(t, login(t, tgt, IdentityOptions{}), HostUnknown)
	})
}
