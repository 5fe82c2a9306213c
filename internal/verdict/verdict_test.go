package verdict

import (
	"errors"
	"fmt"
	"testing"
)

type hinted struct{ hint string }

func (h hinted) Error() string { return "hinted" }
func (h hinted) Hint() string  { return h.hint }

type lasting struct{ permanent bool }

func (l lasting) Error() string   { return "lasting" }
func (l lasting) Permanent() bool { return l.permanent }

// both has a hint and says it heals: the two questions are apart.
type both struct{}

func (both) Error() string   { return "both" }
func (both) Hint() string    { return "wait" }
func (both) Permanent() bool { return false }

func TestVerdict(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		hint      string
		permanent bool
	}{
		{"nil", nil, "", false},
		{"plain", errors.New("x"), "", false},
		{"hint alone is not permanent", hinted{"do this"}, "do this", false},
		{"permanent without a hint", lasting{true}, "", true},
		{"says transient", lasting{false}, "", false},
		{"a hint and transient", both{}, "wait", false},
		{"wrapped", fmt.Errorf("outer: %w", lasting{true}), "", true},
		{"first in the chain decides", fmt.Errorf("a: %w", both{}), "wait", false},
		{"joined", errors.Join(errors.New("x"), hinted{"h"}), "h", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Hint(c.err); got != c.hint {
				t.Errorf("Hint = %q, want %q", got, c.hint)
			}
			if got := Permanent(c.err); got != c.permanent {
				t.Errorf("Permanent = %v, want %v", got, c.permanent)
			}
		})
	}
}
