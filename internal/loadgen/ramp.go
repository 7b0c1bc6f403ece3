package loadgen

import (
	"context"
	"fmt"
	"time"
)

// ramp is a series of rate steps on connections already set up: each step
// sends at one rate for StepDuration, drains, and is judged against Limits;
// the ramp stops at the first step that fails unless KeepGoing.
type ramp struct {
	Rates        []float64
	StepDuration time.Duration
	Pause        time.Duration
	Workers      int
	Limits       StepLimits
	KeepGoing    bool
	Drain        time.Duration
}

// rampSend performs operation seq of step (scheduled at due) and returns
// how many deliveries it should cause.
type rampSend func(ctx context.Context, step int, seq, due int64) (int64, error)

// run measures every step into r.rep.Steps and sets r.rep.Best. Receivers
// credit deliveries through steps (the stamp carries the step number).
func (rp ramp) run(ctx context.Context, r *runner, steps *stepTable, send rampSend) {
	r.stepsPlanned = len(rp.Rates)
	best := -1
	for i, rate := range rp.Rates {
		if ctx.Err() != nil {
			break
		}
		st := newStepStats()
		steps.set(i, st)
		name := fmt.Sprintf("%.0f/s", rate)
		w := r.beginStep(name, rate, st)
		sched := NewSchedule(r.clock.Now()+int64(10*time.Millisecond), rate, rp.StepDuration)
		runSends(ctx, r.clock, sched, rp.Workers, st, func(ctx context.Context, seq, due int64) (int64, error) {
			return send(ctx, i, seq, due)
		})
		drain(ctx, st, rp.Drain)
		s := w.end(sched.End(), rp.Limits)
		r.rep.Steps = append(r.rep.Steps, s)
		if s.Pass {
			best = len(r.rep.Steps) - 1
		} else if !rp.KeepGoing {
			break
		}
		if s.GeneratorCores > 0.9 {
			r.note(fmt.Sprintf("step %s: generator used %.2f cores; figures at this rate may be generator-bound", name, s.GeneratorCores))
		}
		if i < len(rp.Rates)-1 {
			sleepCtx(ctx, rp.Pause)
		}
	}
	if best >= 0 {
		b := r.rep.Steps[best]
		r.rep.Best = &b
	}
}
