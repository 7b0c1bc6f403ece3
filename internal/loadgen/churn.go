package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ChurnConfig: start Rate connect → subscribe → (hold) → disconnect cycles
// per second for Duration, with at most MaxInFlight cycles open at once.
type ChurnConfig struct {
	Common
	Rate        float64
	Duration    time.Duration
	Hold        time.Duration
	MaxInFlight int
	Channels    int
}

// RunChurn runs the churn scenario. Cycles start on a wall-clock schedule;
// when MaxInFlight is reached the scheduler waits for a slot and the wait
// is counted in the cycle latency (measured from the scheduled start).
func RunChurn(ctx context.Context, cfg ChurnConfig, env Env) (*Report, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.MaxInFlight <= 0 || cfg.Channels <= 0 || cfg.Hold < 0 {
		return nil, errors.New("churn: rate, duration, max-in-flight and channels must be > 0")
	}
	params := map[string]any{"rate": cfg.Rate, "duration_s": cfg.Duration.Seconds(), "hold_s": cfg.Hold.Seconds(),
		"max_in_flight": cfg.MaxInFlight, "channels": cfg.Channels}
	r, err := newRunner("churn", cfg.Common, cfg.MaxInFlight, env, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	limit := r.capConns(cfg.MaxInFlight)

	pool := NewPool(cfg.Common, r.clock, r.log, nil)
	subLat, cycleLat := NewRecorder(), NewRecorder()
	var started, completed, failed, limitHits atomic.Int64
	var inFlight, maxInFlight atomic.Int64
	var lastDone atomic.Int64 // clock ns of the latest completed subscribe
	t0 := r.clock.Now()
	stop := r.startProgress(ctx, func() string {
		rate := 0.0
		if el := time.Duration(r.clock.Now() - t0).Seconds(); el > 0 {
			rate = float64(completed.Load()) / el
		}
		return fmt.Sprintf("churn: offered %.0f cycles/s, started %d, completed %d (%.0f/s), failed %d, in flight %d, cycle p99 %.2fms so far",
			cfg.Rate, started.Load(), completed.Load(), rate, failed.Load(), inFlight.Load(), cycleLat.Summary().P99Ms)
	})
	defer stop()

	srv0, srvOK := r.server.sample()
	self0, selfOK := r.self.sample()
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	cycle := func(i, due int64) {
		defer wg.Done()
		defer func() { inFlight.Add(-1); <-sem }()
		c, err := pool.Dial(ctx, int(i))
		if err != nil {
			failed.Add(1)
			return
		}
		defer c.Close()
		t1 := r.clock.Now()
		sctx, scancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
		err = c.Subscribe(sctx, "sb-churn-"+strconv.Itoa(int(i)%cfg.Channels), "", "")
		scancel()
		if err != nil {
			pool.SetupErrors.add(err)
			failed.Add(1)
			return
		}
		now := r.clock.Now()
		subLat.Record(int(i), time.Duration(now-t1), now)
		cycleLat.Record(int(i), time.Duration(now-due), now)
		completed.Add(1)
		atomicMax(&lastDone, now)
		sleepCtx(ctx, cfg.Hold)
	}
	sched := NewSchedule(r.clock.Now(), cfg.Rate, cfg.Duration)
	_, _ = sched.Run(ctx, r.clock, sched.End()+int64(time.Minute), func(i, due int64) {
		select {
		case sem <- struct{}{}:
		default:
			limitHits.Add(1)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		atomicMax(&maxInFlight, inFlight.Add(1))
		started.Add(1)
		wg.Add(1)
		go cycle(i, due)
	})
	wg.Wait()
	// The rate window ends at the last completed subscribe (or the nominal
	// end): the final hold and close are not part of the throughput.
	elapsed := time.Duration(max(sched.End(), lastDone.Load()) - sched.Start)

	res := &ChurnResult{
		Rate:              cfg.Rate,
		Started:           started.Load(),
		Completed:         completed.Load(),
		Failed:            failed.Load(),
		CompletedPerSec:   roundTo(float64(completed.Load())/elapsed.Seconds(), 1),
		ConnectLatency:    pool.ConnectLatency.Summary(),
		SubscribeLatency:  subLat.Summary(),
		CycleLatency:      cycleLat.Summary(),
		MaxInFlight:       int(maxInFlight.Load()),
		InFlightLimitHits: limitHits.Load(),
	}
	if srvOK {
		if srv1, ok := r.server.sample(); ok {
			d := Delta(srv0, srv1)
			res.ServerCores = roundTo(d.Cores(), 3)
			if res.Completed > 0 {
				res.ServerCPUUsPerOp = roundTo(float64(d.CPU.Microseconds())/float64(res.Completed), 1)
			}
		}
	}
	if selfOK {
		if self1, ok := r.self.sample(); ok {
			res.GeneratorCores = roundTo(Delta(self0, self1).Cores(), 3)
		}
	}
	if res.InFlightLimitHits > 0 {
		r.note(fmt.Sprintf("in-flight limit %d reached %d times; those cycles waited (counted in cycle latency)", limit, res.InFlightLimitHits))
	}
	r.rep.Churn = res
	stop()
	return r.finish(int(res.Started), pool), nil
}
