package timewheel

import (
	"math/rand/v2"
	"time"
)

// Spread returns d plus a random part of up to d/8, for keep-alive checks.
// Connections made together (a reconnect storm after a deploy, a load
// test) would otherwise be checked together forever: 10,000 connections
// made in a 1.6 s storm were all pinged 120 s later within those same
// 1.6 s, 20,000 frames out and as many answers in on top of the traffic,
// and a fan-out ramp fell at 3,000 publishes/s in that step (p99 547 ms).
// Spread over 15 s instead, the same step kept p99 at 21-38 ms and the
// ramp went on to 4,000/s (docs/performance.md, "Fourth round"). Checks
// never come before d, so clients see the protocol's timeout unchanged.
func Spread(d time.Duration) time.Duration {
	if j := d / 8; j > 0 {
		return d + rand.N(j)
	}
	return d
}
