package webhook

import (
	"container/heap"
	"context"
	"time"
)

// appState is one app's share of the dispatcher. count covers every event
// delivery (event × matching hook) the app holds, wherever it is: delayed,
// in an open batch, pending, in flight or waiting for a retry. It is what the
// queue bound, eviction and the queue gauge look at.
type appState struct {
	id       string
	count    int
	pending  []*job // ready to send, oldest first
	inflight int
	inReady  bool
	failing  bool // last attempt failed: allowed failingInFlight only
	dirty    bool // count changed since the gauge was last set
}

func (a *appState) limit() int {
	if a.failing {
		return failingInFlight
	}
	return appInFlight
}

// job is one HTTP request: one hook, one or more events. Once taken by a
// worker only that worker touches it until it is handed back under the lock.
type job struct {
	app    *appState
	t      *Target
	hook   int
	events []Event
	// at is when its last event was decided (emitted, or its hold ended):
	// the body's time_ms. Not the send time: a receiver orders webhooks
	// by time_ms, and a request that waited in the queue (or a held
	// removal flushed by a node leaving the cluster) must not land
	// behind a re-add that another node decided after it.
	at       time.Time
	body     []byte // built on the first attempt and reused, so retries are byte-identical
	sig      string
	attempts int
	first    time.Time
}

type delayKey struct{ app, channel, user, name string }

type batchKey struct {
	t    *Target
	hook int
}

type chanKey struct{ app, channel string }

type timedKind uint8

const (
	kindDelayed timedKind = iota // an event held back (vacate, member_removed, subscription_count)
	kindBatch                    // an open batch; closes when due
	kindRetry                    // a failed job waiting out its backoff
)

// timed is an entry in the dispatcher's single timer heap.
type timed struct {
	due   time.Time
	index int
	kind  timedKind
	app   *appState

	dkey  delayKey // kindDelayed
	t     *Target
	hooks []int
	ev    Event

	bkey batchKey // kindBatch
	j    *job     // kindBatch, kindRetry
}

type timedHeap []*timed

func (h timedHeap) Len() int           { return len(h) }
func (h timedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h timedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timedHeap) Push(x any) {
	e := x.(*timed)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timedHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) appLocked(id string) *appState {
	a := d.apps[id]
	if a == nil {
		a = &appState{id: id}
		d.apps[id] = a
	}
	return a
}

// admitLocked reserves room for n deliveries of app. When the queue is full
// it evicts the oldest pending request of the app holding the most — only if
// that app would still hold more than this one — so a dead receiver cannot
// keep every other app's events out. Evictions are appended to drops.
func (d *Dispatcher) admitLocked(app *appState, n int, drops *[]dropNote) bool {
	for d.total+n > d.queueSize {
		h := d.hog
		if h == nil || h == app || h.count <= app.count+n || len(h.pending) == 0 {
			return false
		}
		j := h.pending[0]
		h.pending[0] = nil
		h.pending = h.pending[1:]
		d.releaseLocked(h, len(j.events))
		*drops = append(*drops, dropNote{app: h.id, n: len(j.events)})
	}
	app.count += n
	app.dirty = true
	d.total += n
	// The hog is tracked lazily: the largest app is the one growing, so
	// checking on admission is enough to find it again after it changes.
	if d.hog == nil || app.count > d.hog.count {
		d.hog = app
	}
	return true
}

func (d *Dispatcher) releaseLocked(a *appState, n int) {
	a.count -= n
	a.dirty = true
	d.total -= n
}

func (d *Dispatcher) pushTimedLocked(e *timed) {
	heap.Push(&d.timed, e)
	if e.index == 0 {
		signal(d.kick) // new earliest deadline
	}
}

// cancelDelayedLocked drops a held event that has not fired yet.
func (d *Dispatcher) cancelDelayedLocked(k delayKey) bool {
	e := d.delayed[k]
	if e == nil {
		return false
	}
	heap.Remove(&d.timed, e.index)
	delete(d.delayed, k)
	d.releaseLocked(e.app, len(e.hooks))
	return true
}

// deliverLocked routes one (event, hook) into an open batch or a new job.
func (d *Dispatcher) deliverLocked(app *appState, t *Target, hook int, ev Event, now time.Time) {
	if !t.Batching || d.batchWindow <= 0 || d.flushing > 0 {
		d.enqueueLocked(&job{app: app, t: t, hook: hook, events: []Event{ev}, at: now})
		return
	}
	k := batchKey{t, hook}
	e := d.batches[k]
	if e == nil {
		e = &timed{kind: kindBatch, due: now.Add(d.batchWindow), app: app, bkey: k,
			j: &job{app: app, t: t, hook: hook}}
		d.batches[k] = e
		d.pushTimedLocked(e)
	}
	e.j.events = append(e.j.events, ev)
	e.j.at = now
	if len(e.j.events) >= maxBatchEvents {
		heap.Remove(&d.timed, e.index)
		delete(d.batches, k)
		d.enqueueLocked(e.j)
	}
}

func (d *Dispatcher) enqueueLocked(j *job) {
	j.app.pending = append(j.app.pending, j)
	d.markReadyLocked(j.app)
}

// markReadyLocked puts a into the round-robin if it has a job and a free
// in-flight slot. Each app appears at most once, so a busy app gets one turn
// per round however much it has queued.
func (d *Dispatcher) markReadyLocked(a *appState) {
	if a.inReady || len(a.pending) == 0 || a.inflight >= a.limit() {
		return
	}
	a.inReady = true
	d.ready = append(d.ready, a)
	signal(d.wake)
}

// nextJobLocked takes the next app's oldest job, or returns nil.
func (d *Dispatcher) nextJobLocked() *job {
	for len(d.ready) > 0 {
		a := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		a.inReady = false
		// Eviction or a failure may have changed things since it was queued.
		if len(a.pending) == 0 || a.inflight >= a.limit() {
			continue
		}
		j := a.pending[0]
		a.pending[0] = nil
		a.pending = a.pending[1:]
		a.inflight++
		d.markReadyLocked(a)
		return j
	}
	return nil
}

// fireLocked acts on a timer entry that is due (or being flushed).
func (d *Dispatcher) fireLocked(e *timed, now time.Time) {
	switch e.kind {
	case kindDelayed:
		delete(d.delayed, e.dkey)
		if d.confirm != nil && (e.ev.Name == EventChannelVacated || e.ev.Name == EventMemberRemoved) {
			d.confirmAsyncLocked(e)
			return
		}
		for _, h := range e.hooks {
			d.deliverLocked(e.app, e.t, h, e.ev, now)
		}
	case kindBatch:
		delete(d.batches, e.bkey)
		d.enqueueLocked(e.j)
	case kindRetry:
		d.enqueueLocked(e.j)
	}
}

// fireAllButRetriesLocked is Flush's first step: held events and open
// batches go out now. Retries keep their backoff, which is there to spare a
// struggling receiver.
func (d *Dispatcher) fireAllButRetriesLocked(now time.Time) {
	var due []*timed
	for _, e := range d.timed {
		if e.kind != kindRetry {
			due = append(due, e)
		}
	}
	for _, e := range due {
		heap.Remove(&d.timed, e.index)
		d.fireLocked(e, now)
	}
}

// scheduler fires timer entries as they fall due. With a fake clock it polls,
// since no runtime timer can wait for a clock that a test moves by hand.
func (d *Dispatcher) scheduler(ctx context.Context) {
	// Run's and Flush's schedulers may overlap on the one kick channel; one
	// that stops passes on a kick it may have taken from the other.
	defer signal(d.kick)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		d.mu.Lock()
		now := d.now()
		for len(d.timed) > 0 && !d.timed[0].due.After(now) {
			d.fireLocked(heap.Pop(&d.timed).(*timed), now)
		}
		wait := time.Duration(-1)
		if len(d.timed) > 0 {
			wait = d.timed[0].due.Sub(now)
			if d.fakeClock {
				wait = min(wait, fakeClockPoll)
			}
		}
		d.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reportOnce sets the queue gauge for apps whose count changed and forgets
// apps that hold nothing, so the map tracks active apps only.
func (d *Dispatcher) reportOnce() {
	type gauge struct {
		app string
		n   int
	}
	var out []gauge
	d.mu.Lock()
	for id, a := range d.apps {
		if a.dirty {
			out = append(out, gauge{id, a.count})
			a.dirty = false
		}
		// count==0 means no delayed entry, batch, job or retry refers to a.
		if a.count == 0 && a.inflight == 0 && !a.inReady {
			delete(d.apps, id)
			if d.hog == a {
				d.hog = nil
			}
		}
	}
	d.mu.Unlock()
	if d.m != nil {
		for _, g := range out {
			d.m.WebhookQueue(g.app, g.n)
		}
	}
}

// confirmAsyncLocked asks Options.Confirm about a held event off the lock;
// the event stays counted in total (so Flush waits for it) until it is
// delivered or dropped.
func (d *Dispatcher) confirmAsyncLocked(e *timed) {
	go func() {
		// The hold ends now, before Confirm takes the event's marker: a
		// re-add on another node that finds the marker gone was decided
		// after this, and its time_ms says so.
		at := d.now()
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		ok := d.confirm(ctx, e.app.id, e.ev)
		cancel()
		d.mu.Lock()
		if ok {
			for _, h := range e.hooks {
				d.deliverLocked(e.app, e.t, h, e.ev, at)
			}
		} else {
			d.releaseLocked(e.app, len(e.hooks))
		}
		d.mu.Unlock()
		signal(d.wake)
	}()
}
