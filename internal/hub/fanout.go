package hub

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// A broadcast on a channel with no fan-out running is handed out at once
// by the publishing goroutine: one write(2) per recipient, made inline by
// the transport (transport/inline.go). A broadcast that arrives while
// another one's fan-out runs waits in the channel instead; when that
// fan-out ends, every broadcast that waited goes out in one pass, each
// recipient getting all of them in one write (BatchSubscriber) in publish
// order. So publishes finish in the order they came, the earlier one
// first, as a single-threaded server would do it, and a busy channel still
// costs one system call per recipient per pass, not per broadcast.
//
// The earlier design queued a busy channel's broadcasts to every
// recipient's writer goroutine, which coalesced them too, but shared the
// core between the fan-outs running at once: at 40 publishes/s to 2,000
// subscribers on one core, a median latency of 26 ms against soketi's
// 13 ms (docs/performance.md, seventh round, has the measurements of this
// design against it).

// fanoutChunk is the fewest recipients worth a goroutine of their own when
// a pass is split across cores. A delivery to a quiet connection is
// one write(2) made by the delivering goroutine (transport/inline.go), a
// few microseconds, so a chunk is a few hundred microseconds of work
// against about a microsecond to start and join its goroutine.
const fanoutChunk = 128

// Bounds of what may wait in one channel. A publisher that finds the
// channel's queue full waits for the running pass to take it: the back
// pressure a fan-out done in the publisher's own goroutine always gave.
// A pass hands each recipient at most maxWaitingBytes at once, well under
// any sensible send queue bound (limits.send_queue_bytes, 1 MiB by
// default), so a healthy recipient is never taken for a slow consumer.
const (
	maxWaiting      = 256
	maxWaitingBytes = 64 << 10
)

// BatchSubscriber is a Subscriber that can take several broadcasts at once,
// in order, as successive Deliver calls would, with one write to its
// socket (transport.SendAll). Subscribers that are not get one Deliver
// per broadcast, the broadcasts marked transport.Message.Queue so that
// their writer goroutines coalesce them.
type BatchSubscriber interface {
	DeliverBatch(ms []*transport.Message)
}

// fanState is what waits in a busy channel. Guarded by channel.fanMu.
type fanState struct {
	waiting []waitingBroadcast
	bytes   int // payload bytes waiting
	// list is the newest waiting broadcast's recipients, copied at channel
	// version listVersion; the next broadcast shares it when no subscribe
	// or unsubscribe came between.
	list        *[]Subscriber
	listVersion uint32
	// taken is made by a publisher waiting for room and closed when the
	// pass takes the queue.
	taken chan struct{}
}

// waitingBroadcast is one broadcast queued in a busy channel. Its
// recipients are the channel's subscribers when it was published: one who
// subscribes later does not get it (a presence member_added it did not
// miss, say), one who unsubscribes later still does, as with a fan-out
// that had started.
type waitingBroadcast struct {
	m       *transport.Message
	exclude Subscriber
	list    *[]Subscriber // shared with neighbours in the queue
}

// recipients lends the slices a broadcast copies its subscriber list into:
// the writes then run without the channel's lock, so a subscribe to a busy
// channel waits for a copy (2,000 recipients: ~32 KB, microseconds), not for
// 2,000 system calls.
var recipients = sync.Pool{New: func() any { s := make([]Subscriber, 0, 256); return &s }}

// snapshot copies ch's subscribers into a lent slice. ch.mu is held.
func (ch *channel) snapshot() *[]Subscriber {
	bp := recipients.Get().(*[]Subscriber)
	*bp = append((*bp)[:0], ch.subs...)
	return bp
}

func release(bp *[]Subscriber) {
	clear(*bp) // the pool must not keep connections alive
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		recipients.Put(bp)
	}
}

// broadcast hands m to every subscriber of ch except exclude, and reports
// the number of deliveries to obs under ns. On a quiet channel it returns
// when every recipient has been handed m; on a busy one, m is queued and
// handed out by the running fan-out when its pass ends. Either way a
// caller's successive broadcasts reach each recipient in order.
func (h *Hub) broadcast(ns, name string, ch *channel, m *transport.Message, exclude Subscriber) {
	ch.fanMu.Lock()
	for ch.running && ch.fan != nil && ch.fan.full() {
		if ch.fan.taken == nil {
			ch.fan.taken = make(chan struct{})
		}
		taken := ch.fan.taken
		ch.fanMu.Unlock()
		<-taken
		ch.fanMu.Lock()
	}
	if ch.running {
		ch.queueLocked(m, exclude)
		ch.fanMu.Unlock()
		return
	}
	ch.running = true
	ch.fanMu.Unlock()

	ch.mu.RLock()
	list := ch.snapshot()
	ch.mu.RUnlock()
	one := [1]waitingBroadcast{{m: m, exclude: exclude, list: list}}
	h.obs.Delivered(ns, deliverPass(one[:]))
	release(list)

	ch.fanMu.Lock()
	if ch.fan == nil || len(ch.fan.waiting) == 0 {
		ch.running = false
		vacated := ch.vacated
		ch.fanMu.Unlock()
		if vacated {
			h.removeVacated(ns, name, ch)
		}
		return
	}
	ch.fanMu.Unlock()
	// What waited goes out from a goroutine of its own, so that this
	// publisher's wait is one pass however busy the channel stays.
	go h.drain(ns, name, ch)
}

// removeIfIdle takes ch, which has no subscribers left, out of the
// namespace, unless a fan-out runs in it: then it stays, marked vacated,
// until the fan-out ends (removeVacated). Else a subscriber who left and
// came back would be in a new channel object, and a broadcast published
// to it could reach the subscriber before an older one still waiting in
// this one. sp.mu is held.
func (sp *space) removeIfIdle(name string, ch *channel) {
	ch.fanMu.Lock()
	if ch.running {
		ch.vacated = true
	} else if sp.channels[name] == ch {
		delete(sp.channels, name)
	}
	ch.fanMu.Unlock()
}

// removeVacated is called once a fan-out in ch, vacated while it ran,
// has ended: ch goes if it is still empty and idle. If someone subscribed
// meanwhile it stays, no longer vacated; if another fan-out started, the
// end of that one calls this again.
func (h *Hub) removeVacated(ns, name string, ch *channel) {
	sp := h.space(ns, false)
	if sp == nil {
		return
	}
	sp.mu.Lock()
	ch.fanMu.Lock()
	if !ch.running {
		ch.mu.RLock()
		empty := len(ch.subs) == 0
		ch.mu.RUnlock()
		ch.vacated = false
		if empty && sp.channels[name] == ch {
			delete(sp.channels, name)
		}
	}
	ch.fanMu.Unlock()
	sp.mu.Unlock()
}

func (f *fanState) full() bool {
	return len(f.waiting) >= maxWaiting || f.bytes >= maxWaitingBytes
}

// queueLocked appends m to the waiting broadcasts. ch.fanMu is held.
func (ch *channel) queueLocked(m *transport.Message, exclude Subscriber) {
	if ch.fan == nil {
		ch.fan = &fanState{}
	}
	f := ch.fan
	ch.mu.RLock()
	if f.list == nil || f.listVersion != ch.version {
		f.list, f.listVersion = ch.snapshot(), ch.version
	}
	ch.mu.RUnlock()
	f.waiting = append(f.waiting, waitingBroadcast{m: m, exclude: exclude, list: f.list})
	f.bytes += len(m.Payload)
}

// drain hands out the channel's waiting broadcasts, one pass for all that
// waited each time, until none is left. ch.running is set, and ch.fan
// made.
func (h *Hub) drain(ns, name string, ch *channel) {
	var spare []waitingBroadcast
	for {
		ch.fanMu.Lock()
		f := ch.fan
		batch := f.waiting
		if len(batch) == 0 {
			ch.running = false
			f.waiting = spare // the next busy spell appends without allocating
			vacated := ch.vacated
			ch.fanMu.Unlock()
			if vacated {
				h.removeVacated(ns, name, ch)
			}
			return
		}
		f.waiting, spare = spare, nil
		f.bytes, f.list = 0, nil
		if f.taken != nil {
			close(f.taken)
			f.taken = nil
		}
		ch.fanMu.Unlock()

		// Broadcasts with the same recipients go out together; the list
		// changes only where a subscribe or unsubscribe came between.
		n := 0
		for start := 0; start < len(batch); {
			end := start + 1
			for end < len(batch) && batch[end].list == batch[start].list {
				end++
			}
			n += deliverPass(batch[start:end])
			release(batch[start].list)
			start = end
		}
		h.obs.Delivered(ns, n)
		clear(batch)
		if cap(batch) <= maxWaiting {
			spare = batch[:0]
		}
	}
}

// deliverPass hands every broadcast in group (all with the same recipient
// list) to its recipients and returns the number of deliveries. Big
// passes are split over GOMAXPROCS goroutines; it returns when all are
// done.
func deliverPass(group []waitingBroadcast) int {
	list := *group[0].list
	if len(group) > 1 {
		for _, b := range group {
			b.m.Queue() // for subscribers that take them one by one
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(list)/fanoutChunk)
	if workers <= 1 {
		return deliverTo(list, group)
	}
	per := (len(list) + workers - 1) / workers
	var wg sync.WaitGroup
	var others atomic.Int64
	for start := per; start < len(list); start += per {
		part := list[start:min(start+per, len(list))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			others.Add(int64(deliverTo(part, group)))
		}()
	}
	n := deliverTo(list[:per], group)
	wg.Wait()
	return n + int(others.Load())
}

// deliverTo hands group's broadcasts to each subscriber in list, leaving
// out the ones that exclude it, and returns the number of deliveries.
func deliverTo(list []Subscriber, group []waitingBroadcast) int {
	if len(group) == 1 {
		b := group[0]
		n := 0
		for _, s := range list {
			if s != b.exclude {
				s.Deliver(b.m)
				n++
			}
		}
		return n
	}
	ms := make([]*transport.Message, 0, len(group))
	n := 0
	for _, s := range list {
		ms = ms[:0]
		for _, b := range group {
			if s != b.exclude {
				ms = append(ms, b.m)
			}
		}
		if len(ms) == 0 {
			continue // excluded from every one
		}
		n += len(ms)
		if bs, ok := s.(BatchSubscriber); ok {
			bs.DeliverBatch(ms)
			continue
		}
		for _, m := range ms {
			s.Deliver(m)
		}
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
