package sshcfg

import (
	"fmt"
	"strconv"
)

// ControlMaster is what ssh_config's ControlMaster asks of connection
// sharing: whether this connection listens at ControlPath for others to
// ride (yes, ask), rides a master it finds there and otherwise becomes
// one (auto, autoask), or only rides one (no).
type ControlMaster int

// The values of ControlMaster, in readconf.c's order.
const (
	ControlMasterNo ControlMaster = iota
	ControlMasterYes
	ControlMasterAsk
	ControlMasterAuto
	ControlMasterAutoAsk
)

// controlMasterNames are multistate_controlmaster's: any case is accepted,
// and the first name of a value is the one ssh -G prints.
var controlMasterNames = []struct {
	name  string
	value ControlMaster
}{
	{"true", ControlMasterYes}, {"yes", ControlMasterYes},
	{"false", ControlMasterNo}, {"no", ControlMasterNo},
	{"auto", ControlMasterAuto}, {"ask", ControlMasterAsk},
	{"autoask", ControlMasterAutoAsk},
}

// String is the value as ssh -G prints it.
func (m ControlMaster) String() string {
	for _, n := range controlMasterNames {
		if n.value == m {
			return n.name
		}
	}
	return "UNKNOWN"
}

// Rides reports whether a master already listening at ControlPath is to
// be used: with "yes" and "ask" ssh becomes a master without looking.
func (m ControlMaster) Rides() bool {
	return m == ControlMasterNo || m == ControlMasterAuto || m == ControlMasterAutoAsk
}

// Starts reports whether, with no master listening, this connection is to
// become one.
func (m ControlMaster) Starts() bool { return m != ControlMasterNo }

func controlMasterKeyword(r *resolver, c *call) error {
	a, _ := c.next()
	for _, n := range controlMasterNames {
		if lower(a) == n.name {
			if c.active {
				r.cfg.setStr(c.keyword, strconv.Itoa(int(n.value)))
			}
			return nil
		}
	}
	return fmt.Errorf("unsupported option %q", a)
}

// controlPersistKeyword is readconf.c's: yes/true or no/false, in lower
// case only, or a time, which turns persistence on for that long ("0" on
// for good, as "yes").
func controlPersistKeyword(r *resolver, c *call) error {
	a, err := c.arg()
	if err != nil {
		return fmt.Errorf("missing ControlPersist argument")
	}
	var v string
	switch a {
	case "no", "false":
		v = "no"
	case "yes", "true":
		v = "0"
	default:
		secs, ok := convtime(a)
		if !ok {
			return fmt.Errorf("bad ControlPersist argument %q", a)
		}
		v = strconv.Itoa(secs)
	}
	if c.active {
		r.cfg.setStr(c.keyword, v)
	}
	return nil
}

// controlPersistShown is ControlPersist as ssh -G prints it: "no", "yes"
// when the master stays until told to go, or the seconds it stays idle.
func (t *Target) controlPersistShown() string {
	switch {
	case !t.ControlPersist:
		return "no"
	case t.ControlPersistTimeout == 0:
		return "yes"
	}
	return strconv.Itoa(int(t.ControlPersistTimeout.Seconds()))
}
