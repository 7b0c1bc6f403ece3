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
// and a fan-out of 3,000 publishes/s that sustained 20 ms p99 before and
// after fell to 547 ms p99 in that step (docs/performance.md, "Fourth
// round"). Spread over d/8 (15 s at Pusher's 120 s) the same pings make a
// load eight times lower and less; checks never come before d.
func Spread(d time.Duration) time.Duration {
	if j := d / 8; j > 0 {
		return d + rand.N(j)
	}
	return d
}
