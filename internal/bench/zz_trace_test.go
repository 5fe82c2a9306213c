//go:build unix

package bench

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestZZTrace(t *testing.T) {
	var proxy *DelayProxy
	var mu sync.Mutex
	var lines []string
	t0 := time.Now()
	w := newWorld(t, map[string]string{"m2m-ssh": ".", "raw": "./internal/bench/rawmcp"}, func(a string) map[string]string {
		proxy, _ = StartDelayProxy(a, 25*time.Millisecond)
		proxy.Log = func(c bool, n int, f int64) {
			mu.Lock()
			defer mu.Unlock()
			d := "S->C"
			if c {
				d = "C->S"
			}
			lines = append(lines, fmt.Sprintf("%6.1fms flight %2d %s %d", float64(time.Since(t0))/1e6, f, d, n))
		}
		return map[string]string{"slow": proxy.Addr}
	})
	_ = w
	for _, argv := range [][]string{
		{w.ssh, "-T", "-F", w.config, "slow", w.bin["raw"]},
		{w.bin["m2m-ssh"], "-F", w.config, "slow", "--", w.bin["raw"]},
	} {
		mu.Lock(); lines = nil; t0 = time.Now(); mu.Unlock()
		d, err := startToInitialize(argv, w.env, func() { mu.Lock(); lines = append(lines, "---- answered"); mu.Unlock() })
		fmt.Println(argv[0], d, err)
		mu.Lock()
		for _, l := range lines { fmt.Println(l) }
		mu.Unlock()
	}
}
