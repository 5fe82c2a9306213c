//go:build unix

package master

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Five starters at once hold the lock one at a time.
func TestLockSerializes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cm")
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := takeLock(context.Background(), path)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond) // widen the window a second holder would need
			inside.Add(-1)
			l.release()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d starters held the lock at once", most.Load())
	}
}

func TestLockGivesUpWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cm")
	held, err := takeLock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := takeLock(ctx, path); err == nil {
		t.Fatal("took a lock that is held")
	}
	if time.Since(start) > hang {
		t.Fatal("the wait ignored its context")
	}
	held.release()
	// The abandoned waiter gives the lock up once it has it.
	l := waitLock(t, path)
	l.release()
}

func waitLock(t *testing.T, path string) *lock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	l, err := takeLock(ctx, path)
	if err != nil {
		t.Fatalf("the lock was not given back: %v", err)
	}
	return l
}

func TestLockHostileFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	os.WriteFile(target, nil, 0o600)
	os.Symlink(target, filepath.Join(dir, "link"+lockSuffix))
	os.Mkdir(filepath.Join(dir, "dir"+lockSuffix), 0o700)
	cases := []struct{ name, path, want string }{
		{"symlink", filepath.Join(dir, "link"), "symbolic link"},
		{"directory", filepath.Join(dir, "dir"), "cannot lock"},
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other"+lockSuffix)
		os.WriteFile(other, nil, 0o600)
		os.Chown(other, 4242, 4242)
		cases = append(cases, struct{ name, path, want string }{"another user's", filepath.Join(dir, "other"), "owned by uid 4242"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := takeLock(context.Background(), c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
		})
	}
}
