//go:build race

package bridge

// raceEnabled shrinks the soak test under the race detector, which slows
// it tenfold.
const raceEnabled = true
