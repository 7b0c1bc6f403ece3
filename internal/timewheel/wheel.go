// Package timewheel runs many coarse timers on one goroutine.
//
// A server with tens of thousands of connections needs an activity timeout, a
// ping deadline and sometimes a handshake deadline per connection. One
// runtime timer or goroutine each would cost memory and scheduler work per
// connection; a hashed timing wheel costs one intrusive list node per timer
// and one goroutine in all. Timers fire on the wheel's goroutine, so callbacks
// must be short and must not block (queue work, close a socket, reschedule).
package timewheel

import (
	"context"
	"math"
	"sync"
	"time"
)

// Wheel is a hashed timing wheel with a fixed tick. A timer due in d fires
// between d and d+tick after it was scheduled.
type Wheel struct {
	tick  time.Duration
	mu    sync.Mutex
	slots []timerList
	pos   int // slot that the next tick processes
	now   func() time.Time
}

// Timer is one scheduled callback. The zero value is not usable; get one from
// Wheel.Schedule or Wheel.NewTimer.
type Timer struct {
	wheel *Wheel
	fn    func()
	// int32 both: a Timer per connection, 56 bytes became 48 (a size
	// class down from 64). 2^31 revolutions of the default wheel are
	// thousands of years; longer is clamped.
	rounds     int32 // full revolutions left before it fires
	slot       int32
	prev, next *Timer
	active     bool
}

type timerList struct{ head *Timer }

// New returns a wheel with the given tick and number of slots; a timer
// longer than tick*slots waits whole revolutions, which costs one decrement
// per revolution. Defaults: 100 ms tick, 1024 slots (102 s per revolution).
func New(tick time.Duration, slots int) *Wheel {
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	if slots <= 0 {
		slots = 1024
	}
	return &Wheel{tick: tick, slots: make([]timerList, slots), now: time.Now}
}

// Tick is the wheel's resolution.
func (w *Wheel) Tick() time.Duration { return w.tick }

// Run advances the wheel until ctx is done.
func (w *Wheel) Run(ctx context.Context) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Advance()
		}
	}
}

// Advance processes one tick: every timer due in the current slot fires.
// Run calls it; tests call it directly to step time deterministically.
func (w *Wheel) Advance() {
	var due []*Timer
	w.mu.Lock()
	slot := &w.slots[w.pos]
	for t := slot.head; t != nil; {
		next := t.next
		if t.rounds > 0 {
			t.rounds--
		} else {
			w.unlink(t)
			due = append(due, t)
		}
		t = next
	}
	w.pos = (w.pos + 1) % len(w.slots)
	w.mu.Unlock()
	for _, t := range due {
		t.fn()
	}
}

// NewTimer returns a stopped timer that runs fn when it fires.
func (w *Wheel) NewTimer(fn func()) *Timer { return &Timer{wheel: w, fn: fn} }

// Schedule runs fn once after d.
func (w *Wheel) Schedule(d time.Duration, fn func()) *Timer {
	t := w.NewTimer(fn)
	t.Reset(d)
	return t
}

// Reset (re)arms the timer to fire after d, cancelling a pending firing.
func (t *Timer) Reset(d time.Duration) {
	w := t.wheel
	ticks := int((d + w.tick - 1) / w.tick)
	if ticks < 1 {
		ticks = 1
	}
	w.mu.Lock()
	if t.active {
		w.unlink(t)
	}
	// The slot at pos is processed on the next tick, which may be only a
	// moment away; placing the timer `ticks` steps ahead of pos makes it
	// fire after at least `ticks` whole ticks, never early.
	n := len(w.slots)
	t.slot = int32((w.pos + ticks) % n)
	t.rounds = int32(min(ticks/n, math.MaxInt32))
	l := &w.slots[t.slot]
	t.prev, t.next = nil, l.head
	if l.head != nil {
		l.head.prev = t
	}
	l.head = t
	t.active = true
	w.mu.Unlock()
}

// Stop cancels the timer; it reports whether the timer was pending.
func (t *Timer) Stop() bool {
	w := t.wheel
	w.mu.Lock()
	defer w.mu.Unlock()
	if !t.active {
		return false
	}
	w.unlink(t)
	return true
}

func (w *Wheel) unlink(t *Timer) {
	l := &w.slots[t.slot]
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.active = nil, nil, false
}
