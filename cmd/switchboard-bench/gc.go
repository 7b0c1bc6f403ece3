package main

import (
	"os"
	"runtime/debug"
)

// generatorMemoryLimit is the heap size at which the generator's garbage
// collector runs when quietCollector has turned its pacing off.
const generatorMemoryLimit = 4 << 30

// quietCollector keeps the generator's own garbage collector out of the
// latencies it measures, unless GOGC or GOMEMLIMIT is set in the
// environment (then the runtime's knobs decide, as usual).
//
// With the runtime's default (GOGC=100) the generator, pinned to one core
// and holding 10,000 connections, collected every 2-3 s, and each mark
// phase delayed its reads of deliveries: in `fanout --conns 10000
// --channels 1000 --rates 250,1000,2000 --step 15s` against one server
// build, p99 was 10.2/7.3/12.6 ms with the default and 3.1/3.4/6.4 ms with
// the collector off (p99.9 18.5/24.5/23.0 against 13.2/14.7/18.0 ms; one
// run each, 2026-12-05). The pause inflated both servers' tails alike and
// so hid the difference between them. With pacing off the collector runs
// only when the heap reaches generatorMemoryLimit: at about 50 MB/s of
// garbage, every minute or so, and none in most steps.
func quietCollector() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(generatorMemoryLimit)
	debug.SetGCPercent(-1)
}
