package transport

import "time"

// testBound bounds what must not hang, on a loaded machine.
const testBound = 20 * time.Second
