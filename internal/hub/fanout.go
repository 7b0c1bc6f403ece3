package hub

import (
	"runtime"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// fanoutChunk is the fewest recipients worth a goroutine of their own when
// a broadcast is split across cores. A delivery to a quiet connection is
// one write(2) made by the delivering goroutine (transport/inline.go), a
// few microseconds, so a chunk is a few hundred microseconds of work
// against about a microsecond to start and join its goroutine.
const fanoutChunk = 128

// busyGap: a broadcast that starts while another one on the same channel
// is still being handed out, or less than this after the last one ended,
// is marked transport.Message.Queue: the channel is busy, and its
// recipients' writer goroutines coalesce the waiting frames into one writev
// each (BenchmarkFanout/1000subs, one core: ~1 µs per delivery batched
// against ~11 µs written one by one). A quieter channel's broadcasts are
// written inline, one write(2) per recipient by the delivering goroutine:
// ~11 against ~13 µs through a writer goroutine started per delivery
// (unbatched vs unbatched-queued), the bare write's cost.
const busyGap = int64(time.Millisecond)

// recipients lends the slices a broadcast copies its subscriber list into:
// the writes then run without the channel's lock, so a subscribe to a busy
// channel waits for a copy (2,000 recipients: ~32 KB, microseconds), not for
// 2,000 system calls.
var recipients = sync.Pool{New: func() any { s := make([]Subscriber, 0, 256); return &s }}

// deliverAll hands m to every subscriber of ch except exclude and returns
// how many it reached. Big fan-outs are split over GOMAXPROCS goroutines;
// it returns only when every recipient has been handed m, so a caller's
// successive broadcasts reach each recipient in order.
func deliverAll(ch *channel, m *transport.Message, exclude Subscriber) int {
	if ch.fanouts.Add(1) > 1 || time.Now().UnixNano()-ch.lastEnd.Load() < busyGap {
		m.Queue()
	}
	defer func() {
		ch.lastEnd.Store(time.Now().UnixNano())
		ch.fanouts.Add(-1)
	}()
	bp := recipients.Get().(*[]Subscriber)
	list := (*bp)[:0]
	ch.mu.RLock()
	for _, s := range ch.subs {
		if s != exclude {
			list = append(list, s)
		}
	}
	ch.mu.RUnlock()
	n := len(list)

	workers := min(runtime.GOMAXPROCS(0), n/fanoutChunk)
	if workers <= 1 {
		for _, s := range list {
			s.Deliver(m)
		}
	} else {
		per := (n + workers - 1) / workers
		var wg sync.WaitGroup
		for start := per; start < n; start += per {
			part := list[start:min(start+per, n)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, s := range part {
					s.Deliver(m)
				}
			}()
		}
		for _, s := range list[:per] {
			s.Deliver(m)
		}
		wg.Wait()
	}

	clear(list) // the pool must not keep connections alive
	if cap(list) <= 64<<10 {
		*bp = list[:0]
		recipients.Put(bp)
	}
	return n
}
