package transport

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/machine-to-machine/m2m-ssh/internal/verdict"
	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// fakeResolver answers from a table: no lookup leaves the process.
type fakeResolver map[string][]string

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// dualListeners listens on 127.0.0.1 and ::1 on the same port.
func dualListeners(t *testing.T) (v4, v6 net.Listener, port int) {
	t.Helper()
	const tries = 20 // another process may hold the port on ::1
	for range tries {
		l4, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(p)))
		if err != nil {
			l4.Close()
			continue
		}
		t.Cleanup(func() { l4.Close(); l6.Close() })
		return l4, l6, p
	}
	t.Skip("no port free on both 127.0.0.1 and ::1")
	return nil, nil, 0
}

// peer accepts one connection on l and returns the client's address as
// the server sees it.
func peer(t *testing.T, l net.Listener) <-chan net.Addr {
	ch := make(chan net.Addr, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c.RemoteAddr()
		c.Close()
	}()
	return ch
}

func dialTarget(t *testing.T, d *Dialer, tg *sshcfg.Target) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := d.dialTCP(ctx, Hop{Target: tg}, tg)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func TestAddressFamily(t *testing.T) {
	for _, tc := range []struct {
		family string
		want   string // which listener accepts: "v4" or "v6"
	}{
		{"any", "v6"}, // the resolver's order: ::1 first
		{"inet", "v4"},
		{"inet6", "v6"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			l4, l6, port := dualListeners(t)
			d := &Dialer{Resolver: fakeResolver{"dual.test": {"::1", "127.0.0.1"}}}
			tg := &sshcfg.Target{Alias: "dual", HostName: "dual.test", Port: port, AddressFamily: tc.family, ConnectionAttempts: 1}
			got4, got6 := peer(t, l4), peer(t, l6)
			c, err := dialTarget(t, d, tg)
			if err != nil {
				t.Fatal(err)
			}
			ip := c.RemoteAddr().(*net.TCPAddr).IP
			if is4 := ip.To4() != nil; is4 != (tc.want == "v4") {
				t.Fatalf("connected to %v, want the %s listener", ip, tc.want)
			}
			want := got6
			if tc.want == "v4" {
				want = got4
			}
			select {
			case a := <-want:
				t.Logf("server saw %v", a)
			case <-time.After(30 * time.Second):
				t.Fatal("the listener never accepted")
			}
		})
	}
	t.Run("no address of the family", func(t *testing.T) {
		d := &Dialer{Resolver: fakeResolver{"v4only.test": {"127.0.0.1"}}}
		tg := &sshcfg.Target{Alias: "v4only", HostName: "v4only.test", Port: 22, AddressFamily: "inet6", ConnectionAttempts: 1}
		_, err := dialTarget(t, d, tg)
		var ae *AddressFamilyError
		if !errors.As(err, &ae) || !verdict.Permanent(err) {
			t.Fatalf("err = %v, want a permanent AddressFamilyError", err)
		}
	})
}

func TestBindAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name, bindAddress, bindInterface, want string
	}{
		{"address", "127.0.0.2", "", "127.0.0.2"},
		// BindAddress wins over BindInterface, as in ssh_create_socket.
		{"address over interface", "127.0.0.3", "lo", "127.0.0.3"},
		{"interface", "", "lo", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := peer(t, l)
			tg := &sshcfg.Target{Alias: "b", HostName: "127.0.0.1", Port: port, AddressFamily: "any",
				ConnectionAttempts: 1, BindAddress: tc.bindAddress, BindInterface: tc.bindInterface}
			c, err := dialTarget(t, &Dialer{}, tg)
			if err != nil {
				t.Fatal(err)
			}
			if ip := c.LocalAddr().(*net.TCPAddr).IP.String(); ip != tc.want {
				t.Errorf("connected from %s, want %s", ip, tc.want)
			}
			select {
			case a := <-got:
				if ip := a.(*net.TCPAddr).IP.String(); ip != tc.want {
					t.Errorf("server saw %s, want %s", ip, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the listener never accepted")
			}
		})
	}
	for _, tc := range []struct{ name, bindAddress, bindInterface, keyword string }{
		{"no such interface", "", "nosuch0", "BindInterface"},
		{"address of the other family", "::1", "", "BindAddress"},
		{"name that does not resolve", "nowhere.test", "", "BindAddress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &sshcfg.Target{Alias: "b", HostName: "127.0.0.1", Port: port, AddressFamily: "any",
				ConnectionAttempts: 1, BindAddress: tc.bindAddress, BindInterface: tc.bindInterface}
			_, err := dialTarget(t, &Dialer{Resolver: fakeResolver{}}, tg)
			var be *BindError
			if !errors.As(err, &be) || be.Keyword != tc.keyword || !verdict.Permanent(err) {
				t.Fatalf("err = %v, want a permanent BindError naming %s", err, tc.keyword)
			}
		})
	}
}

func TestConnectionAttempts(t *testing.T) {
	t.Run("refused then accepted", func(t *testing.T) {
		// The port refuses until two rounds have failed; then a
		// listener takes it, before the third.
		l0, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l0.Addr().String()
		port := l0.Addr().(*net.TCPAddr).Port
		l0.Close()
		var rounds []error
		var accepted <-chan net.Addr
		d := &Dialer{afterAttempt: func(n int, err error) {
			rounds = append(rounds, err)
			if n == 2 {
				l, lerr := net.Listen("tcp", addr)
				if lerr != nil {
					t.Errorf("listen again on %s: %v", addr, lerr)
					return
				}
				t.Cleanup(func() { l.Close() })
				accepted = peer(t, l)
			}
		}}
		tg := &sshcfg.Target{Alias: "r", HostName: "127.0.0.1", Port: port, AddressFamily: "any", ConnectionAttempts: 3}
		start := time.Now()
		if _, err := dialTarget(t, d, tg); err != nil {
			t.Fatalf("after %d refused rounds: %v", len(rounds), err)
		}
		if len(rounds) != 2 {
			t.Fatalf("%d failed rounds before connecting, want 2", len(rounds))
		}
		for _, e := range rounds {
			if !errors.Is(e, syscall.ECONNREFUSED) {
				t.Errorf("a round failed with %v, want connection refused", e)
			}
		}
		if took := time.Since(start); took < 2*connectRetryDelay {
			t.Errorf("three attempts took %v: ssh waits %v between them", took, connectRetryDelay)
		}
		select {
		case <-accepted:
		case <-time.After(30 * time.Second):
			t.Fatal("the listener never accepted")
		}
	})
	for _, n := range []int{1, 3} {
		t.Run("always refused/"+strconv.Itoa(n), func(t *testing.T) {
			// Held refusing for the test: no server another test
			// starts meanwhile can take it.
			port := sshtest.FreePort(t)
			rounds := 0
			d := &Dialer{afterAttempt: func(int, error) { rounds++ }}
			tg := &sshcfg.Target{Alias: "r", HostName: "127.0.0.1", Port: port, AddressFamily: "any", ConnectionAttempts: n}
			_, err := dialTarget(t, d, tg)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("err = %v, want connection refused", err)
			}
			if rounds != n {
				t.Errorf("%d attempts, want %d", rounds, n)
			}
		})
	}
}

func TestHopTimeout(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		direct   bool
		want     time.Duration
	}{
		{1, true, 5 * time.Second},
		{3, true, 3*5*time.Second + 2*connectRetryDelay},
		{3, false, 5 * time.Second},
		{1 << 30, true, maxConnectionAttempts*5*time.Second + (maxConnectionAttempts-1)*connectRetryDelay},
	} {
		tg := &sshcfg.Target{ConnectTimeout: 5 * time.Second, ConnectionAttempts: tc.attempts}
		if got := hopTimeout(tg, tc.direct); got != tc.want {
			t.Errorf("attempts %d direct %v: %v, want %v", tc.attempts, tc.direct, got, tc.want)
		}
	}
}

// TestBindInterfaceOther binds to a second interface's address, which the
// kernel would not pick for a loopback destination: the server must see it.
// The interface is one end of a veth pair in a network namespace the test
// makes, so no traffic leaves loopback.
func TestBindInterfaceOther(t *testing.T) {
	const name, want = "m2m0", "10.77.0.2"
	if !sshtest.InOwnNetns(t, "ip link add "+name+" type veth peer name m2m1\n"+
		"ip link set "+name+" up\nip link set m2m1 up\nip addr add "+want+"/24 dev "+name) {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := peer(t, l)
	tg := &sshcfg.Target{Alias: "b", HostName: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port,
		AddressFamily: "any", ConnectionAttempts: 1, BindInterface: name}
	if _, err := dialTarget(t, &Dialer{}, tg); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-got:
		if ip := a.(*net.TCPAddr).IP.String(); ip != want {
			t.Errorf("server saw %s, want %s (BindInterface %s)", ip, want, name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the listener never accepted")
	}
}
