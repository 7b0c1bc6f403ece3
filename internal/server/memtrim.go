package server

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// heapTrimmer hands the heap's free pages back to the operating system once
// the heap has gone quiet. After a connect storm the Go runtime keeps the
// pages of the garbage the storm made: its scavenger only returns memory
// above about 1.1x the next GC goal, which is twice the live heap under the
// default GOGC=100. With 10,000 idle connections that was 2.4x the live heap
// in RSS (45 MB for 19 MB live; docs/performance.md). Nothing allocates much
// while connections sit idle, so returning the pages then costs one forced
// collection and nothing after; while the server is busy the pages are the
// GC headroom it is using, and the trimmer leaves them alone.
type heapTrimmer struct {
	interval time.Duration
	log      *slog.Logger
	samples  []metrics.Sample
	// lastAllocs is the cumulative allocation count at the previous tick.
	lastAllocs uint64
	// trimmedLive is the live heap at the last trim (0: none yet).
	trimmedLive uint64
	// trims counts the trims done (nil: not counted).
	trims interface{ Inc() }
}

// The trimmer's thresholds. A tick is quiet when less than a sixteenth of
// the live heap (or 1 MiB, whichever is more) was allocated since the
// previous one; a quiet tick trims when the heap holds more than a quarter
// of the live heap (and more than 4 MiB) beyond it, and the live heap has
// changed by more than an eighth since the last trim (or there was none).
//
// The last condition makes it one trim per change of the connection
// population (a storm, a mass disconnect), as intended, instead of one per
// GC cycle under light traffic: at 50 publishes/s to 10,000 connections a
// GC cycle's garbage made every ~30 s a quiet tick with a quarter's excess,
// and each trim was a forced collection plus a page release (14-23 ms of
// wall time in the debug log) whose pages the heap then faulted back in.
// Its effect on latency was within this machine's run-to-run noise
// (p99.9 at 50/s: 2.7-10.4 ms either way, 2026-12-05); the work was simply
// for nothing.
const (
	quietDivisor  = 16      // allocated since the last tick < live/16
	quietFloor    = 1 << 20 // ... or < 1 MiB for a small heap
	excessDivisor = 4       // held beyond the live heap > live/4
	excessFloor   = 4 << 20 // ... and > 4 MiB
	changeDivisor = 8       // |live - live at the last trim| > that/8
)

// heapTrimInterval is how often the trimmer looks. A storm's pages go back
// one to two intervals after it ends.
const heapTrimInterval = 5 * time.Second

func newHeapTrimmer(interval time.Duration, log *slog.Logger) *heapTrimmer {
	return &heapTrimmer{
		interval: interval,
		log:      log,
		samples: []metrics.Sample{
			{Name: "/gc/heap/allocs:bytes"},
			{Name: "/gc/heap/live:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"},
		},
	}
}

// run ticks until ctx ends.
func (t *heapTrimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	t.read() // the first tick measures from here
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.tick()
		}
	}
}

// read samples the heap: bytes allocated so far, live bytes at the last
// GC, and the heap bytes the process holds (objects, garbage, free pages
// not yet returned, unused parts of spans).
func (t *heapTrimmer) read() (allocated, live, held uint64) {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	allocs := v(0)
	allocated, t.lastAllocs = allocs-t.lastAllocs, allocs
	return allocated, v(1), v(2) + v(3) + v(4)
}

// tick trims when the heap is quiet and holds much more than it uses, and
// reports whether it did.
func (t *heapTrimmer) tick() bool {
	allocated, live, held := t.read()
	if !shouldTrim(allocated, live, held, t.trimmedLive) {
		return false
	}
	t.trimmedLive = live
	start := time.Now()
	debug.FreeOSMemory()
	if t.trims != nil {
		t.trims.Inc()
	}
	t.log.Debug("returned the idle heap's free pages to the OS",
		"live_bytes", live, "held_bytes", held, "took", time.Since(start))
	return true
}

// shouldTrim is the trimmer's rule (see the thresholds above); trimmedLive
// is the live heap at the last trim, 0 before the first.
func shouldTrim(allocated, live, held, trimmedLive uint64) bool {
	quiet := allocated < max(live/quietDivisor, quietFloor)
	excess := held > live && held-live > max(live/excessDivisor, excessFloor)
	changed := trimmedLive == 0 || max(live, trimmedLive)-min(live, trimmedLive) > trimmedLive/changeDivisor
	return quiet && excess && changed
}

// setGCPercent applies memory.gc_percent, unless GOGC is set in the
// environment: an operator's GOGC wins, as the runtime's own knob. The
// setting is the process's (there is one collector); Run sets it once.
func setGCPercent(percent int, log *slog.Logger) {
	if env := os.Getenv("GOGC"); env != "" {
		log.Info("GOGC is set in the environment; memory.gc_percent is not applied", "GOGC", env)
		return
	}
	debug.SetGCPercent(percent)
}
