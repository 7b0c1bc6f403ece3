package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// stepStats collects the deliveries of one measurement step. Receivers find
// it through the step number carried in each stamp, so a delivery that
// arrives after its step has ended is never credited to the next one.
type stepStats struct {
	rec *Recorder
	// rem records the second latency of presence steps (member_removed).
	rem *Recorder
	// sendLat is how long each send took (HTTP round trip for publishes).
	sendLat *Recorder
	// leaveAt[seq] is when the presence joiner seq unsubscribed (clock ns).
	leaveAt []atomic.Int64

	sent       atomic.Int64
	sendErrors atomic.Int64
	expected   atomic.Int64
	expectRem  atomic.Int64
	lagMax     atomic.Int64
	errs       errTally
}

func newStepStats() *stepStats { return &stepStats{rec: NewRecorder(), sendLat: NewRecorder()} }

// stepTable maps step numbers to their stats. The slice is allocated once
// (the number of steps is known before the run); entries are published with
// atomic stores so receivers never race with the step that installs them.
type stepTable struct{ steps []atomic.Pointer[stepStats] }

func newStepTable(n int) *stepTable { return &stepTable{steps: make([]atomic.Pointer[stepStats], n)} }

func (t *stepTable) get(step int) *stepStats {
	if step < 0 || step >= len(t.steps) {
		return nil
	}
	return t.steps[step].Load()
}

func (t *stepTable) set(step int, s *stepStats) { t.steps[step].Store(s) }

// recordStamped records the latency of a delivery whose frame carries a
// stamp; it returns false for frames without one.
func (t *stepTable) recordStamped(c *Conn, msg []byte, now int64) bool {
	return t.recordStampedID(c.ID, msg, now)
}

// recordStampedID is recordStamped for a receiver known by its id.
func (t *stepTable) recordStampedID(id int, msg []byte, now int64) bool {
	step, _, ns, ok := parseStamp(msg)
	if !ok {
		return false
	}
	st := t.get(step)
	if st == nil {
		return false
	}
	st.rec.Record(id, time.Duration(now-ns), now)
	return true
}

// SendFunc performs operation i of a step whose scheduled time is due
// (clock ns). It returns how many deliveries the operation should cause.
type SendFunc func(ctx context.Context, i int64, due int64) (expect int64, err error)

// runSends drives a schedule through workers concurrent senders. The
// scheduling goroutine only hands out work; when every worker is busy it
// blocks, then catches up with the original due times, so a slow sender or
// server shows as latency and as SendLagMax instead of as a lower rate.
func runSends(ctx context.Context, clock *Clock, s Schedule, workers int, st *stepStats, send SendFunc) {
	type job struct{ i, due int64 }
	jobs := make(chan job, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t0 := clock.Now()
				atomicMax(&st.lagMax, t0-j.due)
				n, err := send(ctx, j.i, j.due)
				t1 := clock.Now()
				st.sendLat.Record(int(j.i), time.Duration(t1-t0), t1)
				st.sent.Add(1)
				if err != nil {
					st.sendErrors.Add(1)
					st.errs.add(err)
					continue
				}
				st.expected.Add(n)
			}
		}()
	}
	deadline := s.End() + int64(time.Minute) // a schedule never runs more than a minute over
	_, _ = s.Run(ctx, clock, deadline, func(i, due int64) {
		select {
		case jobs <- job{i, due}:
		case <-ctx.Done():
		}
	})
	close(jobs)
	wg.Wait()
}

// drain waits until the step has received what it expects, or for at most
// d. It polls: the receive path stays free of any signalling cost.
func drain(ctx context.Context, st *stepStats, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		if st.rec.Count() >= st.expected.Load() && (st.rem == nil || st.rem.Count() >= st.expectRem.Load()) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StepLimits decide whether a step "sustained" its rate.
type StepLimits struct {
	MaxP99          time.Duration
	MaxMissingRatio float64
}

// stepWindow measures one step: process samples around it and, after the
// sends and the drain, the step's figures.
type stepWindow struct {
	r       *runner
	name    string
	rate    float64
	st      *stepStats
	startNs int64
	srv0    ProcSample
	srvOK   bool
	self0   ProcSample
	selfOK  bool
	mach0   time.Duration
	machOK  bool
	live    *liveStep
}

func (r *runner) beginStep(name string, rate float64, st *stepStats) *stepWindow {
	w := &stepWindow{r: r, name: name, rate: rate, st: st}
	w.srv0, w.srvOK = r.server.sample()
	w.self0, w.selfOK = r.self.sample()
	w.mach0, w.machOK = machineBusy()
	w.startNs = r.clock.Now()
	w.live = &liveStep{index: len(r.rep.Steps), total: max(r.stepsPlanned, 1), name: name, rate: rate, st: st, startNs: w.startNs}
	r.live.set(w.live)
	return w
}

// end computes the Step. nominalEnd is the schedule's end (clock ns).
func (w *stepWindow) end(nominalEnd int64, lim StepLimits) Step {
	st := w.st
	h, lastNs, clamped := st.rec.Snapshot()
	received := h.TotalCount()
	expected := st.expected.Load()
	var remLat *Latency
	if st.rem != nil {
		rh, rl, _ := st.rem.Snapshot()
		l := Summarize(rh)
		remLat = &l
		received += rh.TotalCount()
		expected += st.expectRem.Load()
		lastNs = max(lastNs, rl)
	}
	endNs := max(nominalEnd, lastNs)
	w.live.endNs.Store(endNs)
	dur := time.Duration(endNs - w.startNs)
	s := Step{
		Name:          w.name,
		Rate:          w.rate,
		Sent:          st.sent.Load(),
		SendErrors:    st.sendErrors.Load(),
		SendLagMaxMs:  roundTo(float64(st.lagMax.Load())/1e6, 3),
		SendLatency:   st.sendLat.Summary(),
		Expected:      expected,
		Received:      received,
		Missing:       max(0, expected-received),
		Extra:         max(0, received-expected),
		DurationS:     roundTo(dur.Seconds(), 3),
		Latency:       Summarize(h),
		RemoveLatency: remLat,
	}
	if dur > 0 {
		s.DeliveriesPerSec = roundTo(float64(received)/dur.Seconds(), 1)
	}
	if w.srvOK {
		if srv1, ok := w.r.server.sample(); ok {
			d := Delta(w.srv0, srv1)
			s.ServerCores = roundTo(d.Cores(), 3)
			s.ServerRSSBytes = srv1.RSSBytes
			if received > 0 {
				s.ServerCPUUsPerDelivery = roundTo(float64(d.CPU.Microseconds())/float64(received), 3)
			}
		}
	}
	if w.selfOK {
		if self1, ok := w.r.self.sample(); ok {
			s.GeneratorCores = roundTo(Delta(w.self0, self1).Cores(), 3)
		}
	}
	if w.machOK {
		if m1, ok := machineBusy(); ok && dur > 0 {
			s.MachineCores = roundTo((m1-w.mach0).Seconds()/time.Duration(w.r.clock.Now()-w.startNs).Seconds(), 3)
		}
	}
	s.Pass, s.FailReason = judge(s, lim)
	// One line per finished step, whatever the scenario: long ramps show
	// what each rate gave without waiting for the report.
	w.r.log.Info("step done", "step", w.name, "offered_per_s", w.rate, "deliveries_per_s", s.DeliveriesPerSec,
		"p50_ms", s.Latency.P50Ms, "p99_ms", s.Latency.P99Ms, "missing", s.Missing,
		"server_cpu_us_per_delivery", s.ServerCPUUsPerDelivery, "pass", s.Pass, "reason", s.FailReason)
	if clamped > 0 {
		w.r.note(fmt.Sprintf("%s: %d latencies above %s were clamped", w.name, clamped, time.Duration(histHighest)*time.Microsecond))
	}
	if n := st.errs.Total(); n > 0 {
		for _, e := range st.errs.Top(3) {
			w.r.note(fmt.Sprintf("%s: send error ×%d: %s", w.name, e.Count, e.Message))
		}
	}
	return s
}

// judge applies the limits: a step sustains its rate when everything sent
// was delivered (within the allowed missing ratio) and p99 stayed under the
// latency bound.
func judge(s Step, lim StepLimits) (bool, string) {
	if s.Sent == 0 {
		return false, "nothing sent"
	}
	if s.SendErrors > 0 && float64(s.SendErrors) > lim.MaxMissingRatio*float64(s.Sent) {
		return false, fmt.Sprintf("%d send errors", s.SendErrors)
	}
	if s.Expected > 0 && float64(s.Missing) > lim.MaxMissingRatio*float64(s.Expected) {
		return false, fmt.Sprintf("%d missing", s.Missing)
	}
	if lim.MaxP99 > 0 && s.Latency.P99Ms > float64(lim.MaxP99)/1e6 {
		return false, fmt.Sprintf("p99 %.1fms > %s", s.Latency.P99Ms, lim.MaxP99)
	}
	return true, ""
}

// atomicMax raises v to x if x is larger.
func atomicMax(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}
