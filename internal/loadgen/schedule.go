package loadgen

import (
	"context"
	"errors"
	"math"
	"time"
)

// Clock is the run's single time base: nanoseconds since the run started,
// read from Go's monotonic clock. Publisher and receivers live in one
// process, so a stamp written by one and read by the other needs no clock
// synchronisation and is immune to wall-clock steps.
type Clock struct{ epoch time.Time }

// NewClock starts a clock at zero now.
func NewClock() *Clock { return &Clock{epoch: time.Now()} }

// Now is ns since the epoch.
func (c *Clock) Now() int64 { return int64(time.Since(c.epoch)) }

// sleepUntil blocks until the clock reads ns or ctx ends.
func (c *Clock) sleepUntil(ctx context.Context, ns int64) error {
	d := time.Duration(ns - c.Now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// timeSource lets tests drive the schedule with a fake clock.
type timeSource interface {
	Now() int64
	sleepUntil(ctx context.Context, ns int64) error
}

// Schedule is a fixed-rate, wall-clock plan: event i is due at
// Start + i/Rate seconds, for i in [0, Count). Due times are computed from
// the index, never by adding intervals, so there is no drift.
type Schedule struct {
	Start int64   // clock ns of event 0
	Rate  float64 // events per second, > 0
	Count int64   // number of events, >= 0
}

// NewSchedule plans rate events/s for d, starting at start.
func NewSchedule(start int64, rate float64, d time.Duration) Schedule {
	return Schedule{Start: start, Rate: rate, Count: int64(math.Floor(rate * d.Seconds()))}
}

// Due returns the clock ns at which event i is due.
func (s Schedule) Due(i int64) int64 {
	return s.Start + int64(float64(i)*1e9/s.Rate)
}

// End is when the event after the last would be due (the nominal end).
func (s Schedule) End() int64 { return s.Due(s.Count) }

// TickFunc runs one scheduled event. due is the event's scheduled time
// (clock ns), which it must use as the event's send timestamp: when the
// runner is late, the lateness is part of the measured latency.
type TickFunc func(i int64, due int64)

// ErrScheduleDeadline is returned when Run stopped at its time bound.
var ErrScheduleDeadline = errors.New("schedule: time bound reached before all events ran")

// Run calls fn for every event in order, each at or after its due time. If
// fn (or the machine) falls behind, overdue events run back to back without
// sleeping — the schedule is never stretched — and keep their original due
// times. Run stops early when ctx ends or the clock passes deadline (clock
// ns; 0 = none), so it is bounded both by count and by time. It returns
// the number of events run.
func (s Schedule) Run(ctx context.Context, ts timeSource, deadline int64, fn TickFunc) (int64, error) {
	if s.Rate <= 0 || math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) {
		return 0, errors.New("schedule: rate must be positive and finite")
	}
	for i := int64(0); i < s.Count; i++ {
		due := s.Due(i)
		if deadline > 0 && due > deadline {
			return i, ErrScheduleDeadline
		}
		if ts.Now() < due {
			if err := ts.sleepUntil(ctx, due); err != nil {
				return i, err
			}
		} else if err := ctx.Err(); err != nil {
			return i, err
		}
		fn(i, due)
	}
	return s.Count, nil
}

// Lag reports how far behind the schedule a runner is at clock ns now when
// it is about to run event i (0 when on time).
func (s Schedule) Lag(i int64, now int64) time.Duration {
	return time.Duration(max(0, now-s.Due(i)))
}
