package transport

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/machine-to-machine/m2m-ssh/sshcfg"
)

// Resolver looks host names up; net.DefaultResolver is one. Tests give a
// Dialer their own, so that no lookup leaves the machine.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// connectRetryDelay is ssh's pause between connection attempts (the
// sleep(1) of ssh_connect_direct).
const connectRetryDelay = time.Second

// maxConnectionAttempts bounds ConnectionAttempts, which ssh does not:
// past this a configuration means "for ever", and m2m-ssh reconnects by
// itself; it also keeps the hop's time limit from overflowing.
const maxConnectionAttempts = 100

// connectionAttempts is how many times a direct connection is tried.
func connectionAttempts(t *sshcfg.Target) int {
	return min(max(t.ConnectionAttempts, 1), maxConnectionAttempts)
}

// connectTimeout is the time one attempt, or a hop's handshake, may take.
func connectTimeout(t *sshcfg.Target) time.Duration {
	if t.ConnectTimeout > 0 {
		return t.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// hopTimeout bounds a hop from its connect to the end of its handshake:
// ssh gives each direct connection attempt its own ConnectTimeout, a
// second apart.
func hopTimeout(t *sshcfg.Target, direct bool) time.Duration {
	timeout := connectTimeout(t)
	if n := time.Duration(connectionAttempts(t)); direct && n > 1 {
		timeout = timeout*n + connectRetryDelay*(n-1)
	}
	return timeout
}

// dialTCP looks the host name up, keeps the addresses of the
// AddressFamily, and connects to them in the order the resolver gave them,
// from BindAddress or BindInterface, as ssh_connect_direct does: each round
// tries every address, ConnectionAttempts rounds a second apart.
func (d *Dialer) dialTCP(ctx context.Context, th Hop, t *sshcfg.Target) (net.Conn, error) {
	addrs := []string{t.HostName}
	if _, err := netip.ParseAddr(t.HostName); err == nil {
		d.Trace.resolved(th, nil, nil, 0)
	} else {
		start := time.Now()
		addrs, err = d.resolver().LookupHost(ctx, t.HostName)
		d.Trace.resolved(th, addrs, err, time.Since(start))
		if err != nil {
			return nil, err
		}
	}
	var kept []netip.Addr
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err == nil && sshcfg.FamilyAllows(t.AddressFamily, ip) {
			kept = append(kept, ip.Unmap())
		}
	}
	if len(kept) == 0 {
		return nil, &AddressFamilyError{Host: t.HostName, Family: t.AddressFamily, Addrs: addrs}
	}
	port := strconv.Itoa(t.Port)
	var err error
	for attempt := 1; attempt <= connectionAttempts(t); attempt++ {
		if attempt > 1 {
			d.logger().Debug("connecting again", "host", t.Alias, "attempt", attempt, "after", err)
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(connectRetryDelay):
			}
		}
		for _, ip := range kept {
			var c net.Conn
			if c, err = d.connectFrom(ctx, t, ip, port); err == nil {
				return c, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
		}
		if d.afterAttempt != nil {
			d.afterAttempt(attempt, err)
		}
	}
	return nil, err
}

// connectFrom makes one connection to ip, bound as the target says, within
// one ConnectTimeout.
func (d *Dialer) connectFrom(ctx context.Context, t *sshcfg.Target, ip netip.Addr, port string) (net.Conn, error) {
	local, err := d.localAddr(ctx, t, ip)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, connectTimeout(t))
	defer cancel()
	nd := net.Dialer{LocalAddr: local}
	return nd.DialContext(actx, "tcp", net.JoinHostPort(ip.String(), port))
}

// localAddr is the address to bind before connecting to ip, nil for the
// kernel's choice: BindAddress (looked up in ip's family), else the first
// address of BindInterface in ip's family, as ssh_create_socket picks it.
func (d *Dialer) localAddr(ctx context.Context, t *sshcfg.Target, ip netip.Addr) (net.Addr, error) {
	switch {
	case t.BindAddress != "":
		cands := []string{t.BindAddress}
		if _, err := netip.ParseAddr(t.BindAddress); err != nil {
			if cands, err = d.resolver().LookupHost(ctx, t.BindAddress); err != nil {
				return nil, &BindError{Keyword: "BindAddress", Value: t.BindAddress, Err: err}
			}
		}
		for _, c := range cands {
			if b, err := netip.ParseAddr(c); err == nil && b.Unmap().Is4() == ip.Is4() {
				return &net.TCPAddr{IP: b.Unmap().AsSlice()}, nil
			}
		}
		return nil, &BindError{Keyword: "BindAddress", Value: t.BindAddress,
			Err: fmt.Errorf("no %s address to connect to %s from", familyName(ip), ip)}
	case t.BindInterface != "":
		ifc, err := net.InterfaceByName(t.BindInterface)
		if err != nil {
			return nil, &BindError{Keyword: "BindInterface", Value: t.BindInterface, Err: err}
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, &BindError{Keyword: "BindInterface", Value: t.BindInterface, Err: err}
		}
		var linkLocal net.Addr
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil || pfx.Addr().Unmap().Is4() != ip.Is4() {
				continue
			}
			b := &net.TCPAddr{IP: pfx.Addr().Unmap().AsSlice(), Zone: pfx.Addr().Zone()}
			// ssh prefers an address that is not link-local, but takes
			// one when the interface has no other.
			if pfx.Addr().IsLinkLocalUnicast() {
				if linkLocal == nil {
					linkLocal = b
				}
				continue
			}
			return b, nil
		}
		if linkLocal != nil {
			return linkLocal, nil
		}
		return nil, &BindError{Keyword: "BindInterface", Value: t.BindInterface,
			Err: fmt.Errorf("the interface has no %s address", familyName(ip))}
	}
	return nil, nil
}

func (d *Dialer) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return net.DefaultResolver
}

func familyName(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// AddressFamilyError is a host with no address in the AddressFamily.
type AddressFamilyError struct {
	Host   string
	Family string
	Addrs  []string
}

func (e *AddressFamilyError) Error() string {
	return fmt.Sprintf("%s has no address in AddressFamily %s (it has %v)", e.Host, e.Family, e.Addrs)
}

func (e *AddressFamilyError) Permanent() bool { return true }

func (e *AddressFamilyError) Hint() string {
	return "set AddressFamily any for this host, or a HostName with an address of that family"
}

// BindError is a BindAddress or BindInterface that gives no local address
// to connect from.
type BindError struct {
	Keyword, Value string
	Err            error
}

func (e *BindError) Error() string {
	return fmt.Sprintf("cannot connect from %s %s: %v", e.Keyword, e.Value, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

func (e *BindError) Permanent() bool { return true }

func (e *BindError) Hint() string {
	return fmt.Sprintf("check %s for this host: it must name an address or interface of this machine in the family of the address connected to", e.Keyword)
}
