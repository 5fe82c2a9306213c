package master

import (
	"errors"
	"strings"
	"testing"
)

type lastingErr struct{}

func (lastingErr) Error() string   { return "Host key verification failed" }
func (lastingErr) Hint() string    { return "run ssh once" }
func (lastingErr) Permanent() bool { return true }

func TestReadiness(t *testing.T) {
	var b strings.Builder
	if err := writeReady(&b, failure(lastingErr{})); err != nil {
		t.Fatal(err)
	}
	m, err := readReady(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if m.Error != "Host key verification failed" || m.Hint != "run ssh once" || !m.Permanent {
		t.Fatalf("the failure came back as %+v", m)
	}

	cases := []struct {
		name string
		in   string
		want string // in the error; "" for none
	}{
		{"up", `{"pid":42}`, ""},
		{"nothing", "", errNotReady.Error()},
		{"not JSON", "ok\n", "not what m2m-ssh writes"},
		{"no pid", `{}`, "names no process"},
		{"negative pid", `{"pid":-1}`, "names no process"},
		{"too long", `{"error":"` + strings.Repeat("x", maxReady) + `"}`, "over"},
		{"two messages", `{"pid":1}{"pid":2}`, "not what m2m-ssh writes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readReady(strings.NewReader(c.in))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
		})
	}
	if _, err := readReady(strings.NewReader("")); !errors.Is(err, errNotReady) {
		t.Fatalf("an empty pipe gave %v", err)
	}
}

// FuzzReadReady: whatever a broken master writes, the starter gets a
// message that names a process or a failure, or an error; never a panic.
func FuzzReadReady(f *testing.F) {
	f.Add(`{"pid":42}`)
	f.Add(`{"error":"x","hint":"y","permanent":true}`)
	f.Add(``)
	f.Add(`{"pid":"1"}`)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := readReady(strings.NewReader(in))
		if err == nil && m.Error == "" && m.PID <= 0 {
			t.Fatalf("accepted %q as %+v", in, m)
		}
	})
}
