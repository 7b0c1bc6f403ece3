package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// FanoutConfig: Conns subscribers spread over Channels public channels; each
// step publishes at one rate (publishes/s, round-robin over the channels)
// through the signed HTTP API. With several rates the steps run in order on
// the same connections and stop at the first step that fails its limits
// (a ramp); the report's Best is the highest rate that held.
type FanoutConfig struct {
	Common
	Channels       int
	Rates          []float64
	StepDuration   time.Duration
	PublishWorkers int
	Limits         StepLimits
	// KeepGoing runs every rate even after a failed step.
	KeepGoing bool
	// Pause between steps lets the server settle (GC, buffers) so one
	// step's backlog does not bleed into the next.
	Pause time.Duration
}

func (c FanoutConfig) validate() error {
	if c.Conns <= 0 || c.Channels <= 0 {
		return errors.New("fanout: conns and channels must be > 0")
	}
	if c.Channels > c.Conns {
		return errors.New("fanout: more channels than subscribers")
	}
	if len(c.Rates) == 0 {
		return errors.New("fanout: at least one rate")
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return errors.New("fanout: rates must be > 0")
		}
	}
	if c.StepDuration <= 0 || c.PublishWorkers <= 0 {
		return errors.New("fanout: step duration and publish workers must be > 0")
	}
	return nil
}

func fanoutChannel(k int) string { return "sb-fanout-" + strconv.Itoa(k) }

// RunFanout runs the fan-out scenario.
func RunFanout(ctx context.Context, cfg FanoutConfig, env Env) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	params := map[string]any{
		"conns": cfg.Conns, "channels": cfg.Channels, "rates": cfg.Rates,
		"step_s": cfg.StepDuration.Seconds(), "max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6,
		"max_missing_ratio": cfg.Limits.MaxMissingRatio, "payload_bytes": cfg.PayloadBytes,
		"publish_workers": cfg.PublishWorkers,
	}
	r, err := newRunner("fanout", cfg.Common, cfg.Conns, env, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()

	steps := newStepTable(len(cfg.Rates))
	var unstamped atomic.Int64
	pool := NewPool(cfg.Common, r.clock, r.log, func(c *Conn, ev, msg []byte) {
		if string(ev) != benchEvent {
			return
		}
		if !steps.recordStamped(c, msg, r.clock.Now()) {
			unstamped.Add(1)
		}
	})
	defer pool.CloseAll(10 * time.Second)

	n := r.capConns(cfg.Conns)
	stop := r.startProgress(ctx, func() string {
		return r.stepStatus(func() string {
			return fmt.Sprintf("connecting %d/%d (errors %d)", pool.Held(), n, pool.ConnectErrors.Total())
		})
	})
	defer stop()

	r.log.Info("connecting", "conns", n, "channels", cfg.Channels)
	held := pool.ConnectN(ctx, n, func(ctx context.Context, c *Conn) error {
		return c.Subscribe(ctx, fanoutChannel(c.ID%cfg.Channels), "", "")
	})
	r.log.Info("connected", "held", held, "connect_errors", pool.ConnectErrors.Total(), "subscribe_errors", pool.SetupErrors.Total())
	if held == 0 {
		stop()
		return r.finish(cfg.Conns, pool), errors.New("fanout: no subscriber connected")
	}
	go pool.KeepAlive(ctx)
	sleepCtx(ctx, cfg.Settle)

	// Expected deliveries per channel come from who is actually subscribed.
	subs := make([]int64, cfg.Channels)
	for _, c := range pool.Conns() {
		subs[c.ID%cfg.Channels]++
	}
	pub := NewPublisher(cfg.Target, cfg.PublishWorkers, 10*time.Second)
	defer pub.Close()

	rp := ramp{Rates: cfg.Rates, StepDuration: cfg.StepDuration, Pause: cfg.Pause, Workers: cfg.PublishWorkers,
		Limits: cfg.Limits, KeepGoing: cfg.KeepGoing, Drain: cfg.Drain}
	rp.run(ctx, r, steps, func(ctx context.Context, step int, seq, due int64) (int64, error) {
		k := int(seq % int64(cfg.Channels))
		data := appendStamp(make([]byte, 0, 64+cfg.PayloadBytes), step, seq, due, cfg.PayloadBytes)
		if err := pub.Trigger(ctx, benchEvent, []string{fanoutChannel(k)}, data); err != nil {
			return 0, err
		}
		return subs[k], nil
	})
	r.rep.Conns.Held = held
	r.rep.Conns.Lost = held - pool.Held()
	if u := unstamped.Load(); u > 0 {
		r.note(fmt.Sprintf("%d bench events arrived without a readable stamp", u))
	}
	stop()
	return r.finish(cfg.Conns, pool), nil
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
