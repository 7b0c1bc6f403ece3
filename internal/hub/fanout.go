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

// indexAbove is the subscriber count above which a channel keeps a map
// from subscriber to place; at or below it, (un)subscribe searches the
// slice. The map cost 38 B per subscription in TestMemoryPerIdleConnection
// (internal/server: 9,000 connections over 100 channels), and a search of
// 256 interface values takes well under a microsecond
// (BenchmarkSubscribeUnsubscribe).
const indexAbove = 256

// find returns s's place in ch.subs. ch.mu is held.
func (ch *channel) find(s Subscriber) (int, bool) {
	if ch.index != nil {
		i, ok := ch.index[s]
		return i, ok
	}
	for i, x := range ch.subs {
		if x == s {
			return i, true
		}
	}
	return 0, false
}

// add appends s, which is not subscribed. ch.mu is held.
func (ch *channel) add(s Subscriber) {
	if ch.index != nil {
		ch.index[s] = len(ch.subs)
	}
	ch.subs = append(ch.subs, s)
	if ch.index == nil && len(ch.subs) > indexAbove {
		ch.index = make(map[Subscriber]int, len(ch.subs))
		for i, x := range ch.subs {
			ch.index[x] = i
		}
	}
}

// remove takes out the subscriber at i, moving the last one into its
// place. The index goes once the channel has shrunk well below indexAbove
// (not at indexAbove itself, so that a channel hovering there does not
// rebuild it on every subscribe). ch.mu is held.
func (ch *channel) remove(i int) {
	last := len(ch.subs) - 1
	gone := ch.subs[i]
	ch.subs[i] = ch.subs[last]
	ch.subs[last] = nil
	ch.subs = ch.subs[:last]
	if ch.index == nil {
		return
	}
	delete(ch.index, gone)
	if i < last {
		ch.index[ch.subs[i]] = i
	}
	if len(ch.subs) < indexAbove/2 {
		ch.index = nil
	}
}
