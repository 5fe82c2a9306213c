// Package verdict is what m2m-ssh's errors say beyond their message: what
// the user can do about them (a hint), and whether waiting can change them
// (permanent). Library errors carry the answers as methods; the command,
// doctor and the bridge ask through this package, so that neither question
// is answered by the other: an error with a hint may well heal by itself
// (a ProxyCommand that fails while the network is down), and one without a
// hint may not.
package verdict

import "errors"

// Hinter is an error that says what to do about it, in words for a user.
type Hinter interface{ Hint() string }

// Hint is the hint of the first error in err's chain that has one, or "".
func Hint(err error) string {
	var h Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// Permanenter is an error that knows whether waiting can change it.
type Permanenter interface{ Permanent() bool }

// Permanent reports whether err is a verdict that waiting does not change
// (a host key that does not match, credentials the server refuses, a
// configuration error): trying again would give the same answer. The
// first error in the chain that says decides; an error that says nothing
// is taken as transient.
func Permanent(err error) bool {
	var p Permanenter
	return errors.As(err, &p) && p.Permanent()
}
