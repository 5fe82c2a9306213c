package main

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/machine-to-machine/m2m-ssh/agentauth"
	"github.com/machine-to-machine/m2m-ssh/mux"
	"github.com/machine-to-machine/m2m-ssh/transport"
	"golang.org/x/crypto/ssh"
)

// trace turns the bridge dialer's steps into doctor's report, one line a
// step, hop by hop: a jump host's steps are named for it.
func (d *doctor) trace() *transport.Trace {
	resolveFailed := map[string]bool{} // by hop alias
	step := func(h transport.Hop, name string) string {
		if h.JumpFor != "" {
			return name + " (jump host " + h.Target.Alias + ")"
		}
		return name
	}
	return &transport.Trace{
		Resolved: func(h transport.Hop, addrs []string, err error, took time.Duration) {
			switch {
			case err != nil:
				resolveFailed[h.Target.Alias] = true
				d.fail(step(h, "DNS"), explainDial(h.Target, d.s.program.Command, &transport.DialError{Alias: h.Target.Alias, Addr: h.Target.Addr(), JumpFor: h.JumpFor, Stage: "connect", Err: err}))
			case len(addrs) == 0:
				d.pass(step(h, "DNS"), h.Target.HostName+" is an address")
			default:
				d.pass(step(h, "DNS"), fmt.Sprintf("%s is %s (%s)", h.Target.HostName, strings.Join(addrs, ", "), ms(took)))
			}
		},
		Connected: func(h transport.Hop, remote string, err error, took time.Duration) {
			name := "TCP connect"
			if h.Via != "" {
				name = "proxy"
			}
			switch {
			case err != nil && resolveFailed[h.Target.Alias]:
				// Said already.
			case err != nil:
				d.fail(step(h, name), err)
			case h.Via == "ProxyCommand":
				d.pass(step(h, name), "ProxyCommand "+h.Target.ProxyCommand+" started")
			case h.Via != "":
				d.pass(step(h, name), fmt.Sprintf("a channel to %s through jump host %s (%s)", h.Target.Addr(), h.Via, ms(took)))
			default:
				d.pass(step(h, name), fmt.Sprintf("%s in %s", remote, ms(took)))
				d.note(step(h, "proxy"), "none: a direct connection")
			}
		},
		Handshake: func(h transport.Hop, hs transport.Handshake, err error) {
			name := step(h, "SSH handshake")
			switch {
			case hs.HostKey == nil && hs.ServerVersion != "" && !strings.HasPrefix(hs.ServerVersion, "SSH-"):
				err = fmt.Errorf("%s does not speak SSH; it said %q", h.Target.Addr(), hs.ServerVersion)
				d.fail(name, hinted{err, "something else listens on that port: check Port ('m2m-ssh resolve " + h.Target.Alias + "')"})
			case err != nil && hs.HostKey != nil:
				d.fail(name, err, "server "+hs.ServerVersion)
			case err != nil:
				d.fail(name, err)
			default:
				fp := hs.HostKey.Type() + " " + ssh.FingerprintSHA256(hs.HostKey)
				matched := "accepted without a known_hosts line (StrictHostKeyChecking " + h.Target.StrictHostKeyChecking + ")"
				if hs.Known != nil {
					matched = fmt.Sprintf("matched %s:%d", hs.Known.File, hs.Known.Line)
				}
				d.pass(name, fmt.Sprintf("%s, host key %s %s", hs.ServerVersion, fp, matched))
				if h.JumpFor == "" {
					d.identities()
				}
			}
		},
		Master: d.master,
		Authenticated: func(h transport.Hop, accepted agentauth.Offered, err error, took time.Duration) {
			if err != nil && h.JumpFor == "" && d.saidIdentities {
				return
			}
			if err != nil {
				d.fail(step(h, "authentication"), err)
				return
			}
			who := "an identity"
			if accepted.Fingerprint != "" {
				who = fmt.Sprintf("%s %s from %s", accepted.Type, accepted.Fingerprint, accepted.Source)
			}
			d.pass(step(h, "authentication"), fmt.Sprintf("%s accepted %s as %s (%s)", h.Target.Alias, who, h.Target.User, ms(took)))
		},
	}
}

// identities is the step between the host key and the login: what the
// target's login will offer.
func (d *doctor) identities() {
	if d.ids == nil {
		return
	}
	if err := d.ids.None(); err != nil {
		d.saidIdentities = true
		d.fail("identities", err)
		return
	}
	var offered []string
	for _, o := range d.ids.Offered() {
		offered = append(offered, o.String())
	}
	d.pass("identities", fmt.Sprintf("%d to offer", len(offered)), offered...)
}

// master reports the master at ControlPath: a socket that is not to be
// trusted fails (the bridge refuses it too); no master, or one that does
// not answer as one, is a note: the bridge then connects directly, and
// the steps of that follow.
func (d *doctor) master(m transport.Master, err error) {
	var se *mux.SocketError
	switch {
	case errors.As(err, &se):
		d.fail("master", err)
	case errors.Is(err, mux.ErrNoMaster) && d.plan != "":
		d.note("master", "none listening at "+m.Path+": "+d.plan+"; doctor connects directly")
	case errors.Is(err, mux.ErrNoMaster):
		d.note("master", "none listening at "+m.Path+": connecting directly")
	case err != nil:
		d.note("master", fmt.Sprintf("%s did not answer as a master (%v): connecting directly", m.Path, err))
	default:
		d.riding = true
		d.pass("master", fmt.Sprintf("%s, owned by %s, alive (pid %d), protocol version %d", m.Path, owner(m.Owner), m.PID, m.Version), masterLogLine(m.Path)...)
	}
}

// owner names a uid as "name (uid N)".
func owner(uid int) string {
	if uid < 0 {
		return "nobody"
	}
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}
