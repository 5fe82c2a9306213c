package sshcfg

import (
	"net/netip"
	"testing"
)

// TestFamilyAllows: the one home of AddressFamily's rule, which both the
// canonicalization's lookups and the dialer's addresses follow.
func TestFamilyAllows(t *testing.T) {
	tests := []struct {
		family, ip string
		want       bool
	}{
		{"any", "192.0.2.1", true},
		{"any", "2001:db8::1", true},
		{"inet", "192.0.2.1", true},
		{"inet", "::ffff:192.0.2.1", true},
		{"inet", "2001:db8::1", false},
		{"inet6", "2001:db8::1", true},
		{"inet6", "192.0.2.1", false},
		{"inet6", "::ffff:192.0.2.1", false},
	}
	for _, tt := range tests {
		if got := FamilyAllows(tt.family, netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("FamilyAllows(%s, %s) = %v, want %v", tt.family, tt.ip, got, tt.want)
		}
	}
}
