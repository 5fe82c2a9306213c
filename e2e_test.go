package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rogpeppe/go-internal/testscript"
)

// runMainEnv set to 1 makes the test binary m2m-ssh: TestMain runs main
// instead of the tests. The end-to-end tests start m2m-ssh this way, so
// that what they run is main, built with the test binary's flags (-race
// included), and nothing builds it by hand.
const runMainEnv = "M2M_SSH_TEST_MAIN"

// bins are the programs under test. m2m is the test binary itself, run
// through m2mEnv; testmcp and hostile are built by TestMain, because sshd
// runs them on the far side as programs of their own.
var bins struct {
	m2m, testmcp, hostile string
}

func TestMain(m *testing.M) {
	// A master m2m-ssh starts is the test binary again, with the
	// environment m2m-ssh has, which no longer holds runMainEnv.
	if os.Getenv(runMainEnv) == "1" || len(os.Args) > 1 && os.Args[1] == masterCommand {
		// Unset, so that what m2m-ssh passes on (ProxyCommand, SendEnv)
		// is the environment the test gave it.
		os.Unsetenv(runMainEnv)
		main()
	}
	// The scripts run m2m-ssh in-process the same way, as a copy of the
	// test binary named m2m-ssh on their PATH.
	testscript.Main(withBins{m}, map[string]func(){"m2m-ssh": main})
}

// withBins runs the tests with bins set up, and removes what it built
// afterwards.
type withBins struct{ m *testing.M }

func (w withBins) Run() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bins.m2m = self
	dir, err := os.MkdirTemp("", "m2m-ssh-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The programs run behind sshd as whoever the test logs in as
	// (sshtest.UnprivilegedUser), not only as the test's user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := buildBins(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return w.m.Run()
}

// buildBins builds the programs sshd runs for the tests, without the race
// detector even under -race: they are the far side of m2m-ssh, not what is
// under test.
func buildBins(dir string) (err error) {
	if bins.testmcp, err = sshtest.BuildPeer(dir, "./internal/testmcp", "testmcp"); err != nil {
		return err
	}
	bins.hostile, err = sshtest.BuildPeer(dir, "./internal/hostile", "hostile")
	return err
}

// m2mCommand is m2m-ssh with args and the environment env, and nothing
// else: the test binary running main.
func m2mCommand(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bins.m2m, args...)
	cmd.Env = m2mEnv(env...)
	return cmd
}

// m2mEnv is env for m2m-ssh: with runMainEnv, which TestMain removes
// before main sees the environment.
func m2mEnv(env ...string) []string {
	return append(env[:len(env):len(env)], runMainEnv+"=1")
}

// world is a real sshd on 127.0.0.1 with the test MCP server behind it in
// every way m2m-ssh can start it, a real ssh-agent holding the user's key,
// and an ssh config naming it all.
type world struct {
	dir    string
	sshd   *sshtest.SSHD
	agent  *sshtest.Agent
	key    sshtest.Key // in the agent; authorized for exec and subsystem
	shell  sshtest.Key // authorized with command="testmcp"
	stray  sshtest.Key // authorized nowhere
	config string      // ssh config file, for -F
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldAs(t, "")
}

// newWorldAs is newWorld whose sshd takes logins as user (the current
// user when empty), with sshdExtra appended to its sshd_config.
func newWorldAs(t *testing.T, user string, sshdExtra ...string) *world {
	t.Helper()
	w := &world{dir: t.TempDir()}
	w.key = sshtest.Keygen(t, w.dir, "id_ed25519", sshtest.KeyOptions{})
	w.shell = sshtest.Keygen(t, w.dir, "id_shell", sshtest.KeyOptions{})
	w.stray = sshtest.Keygen(t, w.dir, "id_stray", sshtest.KeyOptions{})
	w.sshd = sshtest.StartSSHD(t, sshtest.SSHDConfig{
		AuthorizedKeys: []string{
			w.key.Public,
			fmt.Sprintf("command=%q,restrict %s", bins.testmcp, w.shell.Public),
		},
		Subsystems: map[string]string{"mcp": bins.testmcp},
		LoginUser:  user,
		Extra:      sshdExtra,
	})
	w.agent = sshtest.StartAgent(t)
	w.agent.Add(t, w.key.Path)
	kh := sshtest.WriteFile(t, w.dir, "known_hosts", w.sshd.KnownHosts()...)
	w.config = sshtest.WriteFile(t, w.dir, "ssh_config",
		"Host buildbox buildbox-*",
		"  HostName "+w.sshd.Host,
		fmt.Sprintf("  Port %d", w.sshd.Port),
		"  User "+w.sshd.User,
		"  UserKnownHostsFile "+kh,
		"  StrictHostKeyChecking yes",
		"Host buildbox-shell",
		"  IdentityFile "+w.shell.Path,
		"  IdentitiesOnly yes",
		"Host buildbox-exec",
		"  RemoteCommand "+bins.testmcp,
	)
	return w
}

// command is m2m-ssh as an MCP host starts it: a stripped environment
// with the agent's socket.
func (w *world) command(args ...string) *exec.Cmd {
	return m2mCommand([]string{"HOME=" + w.dir, "PATH=/usr/bin:/bin", "SSH_AUTH_SOCK=" + w.agent.Sock},
		append([]string{"-F", w.config}, args...)...)
}

func connect(t *testing.T, ctx context.Context, cmd *exec.Cmd) (*mcp.ClientSession, error) {
	t.Helper()
	return connectThrough(t, ctx, cmd, &mcp.CommandTransport{Command: cmd})
}

// connectThrough is connect over transport, which runs cmd.
func connectThrough(t *testing.T, ctx context.Context, cmd *exec.Cmd, transport mcp.Transport) (*mcp.ClientSession, error) {
	t.Helper()
	stderr, ok := cmd.Stderr.(*sshtest.Buffer)
	if !ok {
		stderr = &sshtest.Buffer{}
		cmd.Stderr = stderr
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("m2m-ssh stderr:\n%s", stderr.String())
		}
	})
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	return client.Connect(ctx, transport, nil)
}

// TestEndToEnd runs the official Go SDK's client through m2m-ssh every way
// it starts the server, on each path: a direct connection, and riding an
// OpenSSH master (ssh -M) with no credentials of its own (e2e_mux_*).
func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	ways := []struct {
		name string
		args []string
	}{
		{"exec", []string{"buildbox", "--", bins.testmcp}},
		{"exec via RemoteCommand", []string{"buildbox-exec"}},
		{"subsystem", []string{"--subsystem", "mcp", "buildbox"}},
		{"shell with command= key", []string{"buildbox-shell"}},
	}
	for _, path := range e2ePaths(t, w) {
		for _, way := range ways {
			t.Run(path.name+"/"+way.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := path.command(way.args...)
				s, err := connect(t, ctx, cmd)
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer s.Close()
				checkMCP(t, ctx, s)
				// Done with: closed, m2m-ssh has exited and its stderr
				// is all copied.
				s.Close()
				path.check(t, cmd)
			})
		}
	}
}

// checkMCP is what every path must carry: initialize, tools/list, a
// result of megabytes and text that JSON escapes.
func checkMCP(t *testing.T, ctx context.Context, s *mcp.ClientSession) {
	t.Helper()
	if got := s.InitializeResult().ServerInfo.Name; got != "testmcp" {
		t.Fatalf("server name = %q", got)
	}
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	if len(tools.Tools) < 5 {
		t.Fatalf("tools/list returned %d tools", len(tools.Tools))
	}
	const size = 3<<20 + 12345 // more than 1 MiB
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "blob", Arguments: map[string]any{"size": size}})
	if err != nil {
		t.Fatalf("tools/call blob: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != sshtest.Blob(size) {
		t.Fatalf("blob result differs: %d bytes, want %d", len(got), size)
	}
	text := "a \u2028 b \u2029 c \u0085 d ✓"
	res, err = s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		t.Fatalf("tools/call echo: %v", err)
	}
	if got := res.Content[0].(*mcp.TextContent).Text; got != text {
		t.Fatalf("echo = %q, want %q", got, text)
	}
}

// Each failure before the channel is up must reach the host as an error
// naming the cause, quickly, and end m2m-ssh with a non-zero status.
func TestEndToEndFailures(t *testing.T) {
	w := newWorld(t)
	other := sshtest.Keygen(t, w.dir, "other_host_key", sshtest.KeyOptions{})
	changed := sshtest.WriteFile(t, w.dir, "known_hosts_changed", fmt.Sprintf("[%s]:%d %s", w.sshd.Host, w.sshd.Port, other.Public))
	empty := sshtest.WriteFile(t, w.dir, "known_hosts_empty")
	refused := sshtest.FreePort(t)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown host key", []string{"-o", "UserKnownHostsFile=" + empty, "buildbox"}, "Host key verification failed"},
		{"changed host key", []string{"-o", "UserKnownHostsFile=" + changed, "buildbox"}, "Host key verification failed"},
		{"wrong key", []string{"-o", "IdentityAgent=none", "-i", w.stray.Path, "-o", "IdentitiesOnly=yes", "buildbox"}, "Authentication failed"},
		{"connection refused", []string{"--port", fmt.Sprint(refused), "buildbox"}, "Connection refused"},
		{"channel refused", []string{"--subsystem", "nope", "buildbox"}, "refused the subsystem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			wantStartFailure(t, ctx, w.command(c.args...), c.want)
		})
	}
}

// wantStartFailure starts m2m-ssh as an MCP host would and checks that the
// session fails to start without hanging: the host sees an error
// containing want, m2m-ssh exits non-zero, and its stderr has the error
// and hint lines.
func wantStartFailure(t *testing.T, ctx context.Context, cmd *exec.Cmd, want string) {
	t.Helper()
	_, err := connect(t, ctx, cmd)
	if err == nil {
		t.Fatal("connected; want an error")
	}
	if ctx.Err() != nil {
		t.Fatalf("m2m-ssh hung: %v", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("the host saw %q; want it to contain %q", err, want)
	}
	// The client waited for m2m-ssh when the connect failed.
	if st := cmd.ProcessState; st == nil || st.ExitCode() <= 0 {
		t.Fatalf("m2m-ssh exited with %v; want a non-zero status", st)
	}
	if stderr := fmt.Sprint(cmd.Stderr); !strings.Contains(stderr, "m2m-ssh: error: ") || !strings.Contains(stderr, "m2m-ssh: hint: ") {
		t.Fatalf("stderr lacks the error and hint lines:\n%s", stderr)
	}
}
