package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// ClientEventsConfig: Conns connections over Channels private channels;
// Rate client events per second in total, each sent by the next connection
// in turn to its own channel and delivered by the server to every other
// member of that channel (never echoed to the sender).
type ClientEventsConfig struct {
	Common
	Channels int
	Rate     float64
	Duration time.Duration
	Limits   StepLimits
}

func clientEventChannel(k int) string { return "private-sb-ce-" + strconv.Itoa(k) }

// pusherClientEventLimit is Pusher's documented per-connection limit; going
// over it measures the server's rate limiter, not its delivery path.
const pusherClientEventLimit = 10

// RunClientEvents runs the client-events scenario. The generator knows the
// app secret, so it signs private-channel auth itself (what an app's auth
// endpoint would return).
func RunClientEvents(ctx context.Context, cfg ClientEventsConfig, env Env) (*Report, error) {
	if cfg.Conns < 2 || cfg.Channels <= 0 || cfg.Conns < 2*cfg.Channels || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("client-events: need conns >= 2*channels, channels, rate and duration > 0")
	}
	params := map[string]any{"conns": cfg.Conns, "channels": cfg.Channels, "rate": cfg.Rate,
		"duration_s": cfg.Duration.Seconds(), "max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6, "payload_bytes": cfg.PayloadBytes}
	r, err := newRunner("client-events", cfg.Common, cfg.Conns, env, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()

	steps := newStepTable(1)
	pool := NewPool(cfg.Common, r.clock, r.log, func(c *Conn, ev, msg []byte) {
		if string(ev) == benchClientEvent {
			steps.recordStamped(c, msg, r.clock.Now())
		}
	})
	defer pool.CloseAll(10 * time.Second)
	n := r.capConns(cfg.Conns)
	st := newStepStats()
	stop := r.startProgress(ctx, func() string {
		return r.stepStatus(func() string {
			return fmt.Sprintf("connecting %d/%d (errors %d)", pool.Held(), n, pool.ConnectErrors.Total())
		})
	})
	defer stop()

	key, secret := cfg.Target.Key, cfg.Target.Secret
	held := pool.ConnectN(ctx, n, func(ctx context.Context, c *Conn) error {
		ch := clientEventChannel(c.ID % cfg.Channels)
		return c.Subscribe(ctx, ch, pushersign.ChannelAuth(key, secret, c.SocketID, ch, ""), "")
	})
	r.rep.Conns.Held = held
	if held < 2 {
		stop()
		return r.finish(cfg.Conns, pool), errors.New("client-events: fewer than two connections subscribed")
	}
	go pool.KeepAlive(ctx)
	sleepCtx(ctx, cfg.Settle)

	conns := pool.Conns()
	subs := make([]int64, cfg.Channels)
	for _, c := range conns {
		subs[c.ID%cfg.Channels]++
	}
	if per := cfg.Rate / float64(len(conns)); per > pusherClientEventLimit {
		r.note(fmt.Sprintf("%.1f client events/s per connection exceeds Pusher's limit of %d/s; servers that enforce it will reject (4301)", per, pusherClientEventLimit))
	}
	steps.set(0, st)
	w := r.beginStep(fmt.Sprintf("%.0f/s", cfg.Rate), cfg.Rate, st)
	sched := NewSchedule(r.clock.Now()+int64(10*time.Millisecond), cfg.Rate, cfg.Duration)
	// Sends are socket writes of ~100 bytes; a few workers keep one slow
	// connection from stalling the schedule.
	runSends(ctx, r.clock, sched, 8, st, func(ctx context.Context, seq, due int64) (int64, error) {
		c := conns[seq%int64(len(conns))]
		k := c.ID % cfg.Channels
		msg := clientEventMsg(make([]byte, 0, 128+cfg.PayloadBytes), clientEventChannel(k), 0, seq, due, cfg.PayloadBytes)
		if err := c.Send(msg); err != nil {
			return 0, err
		}
		return subs[k] - 1, nil
	})
	drain(ctx, st, cfg.Drain)
	s := w.end(sched.End(), cfg.Limits)
	r.rep.Steps = append(r.rep.Steps, s)
	r.rep.Conns.Lost = held - pool.Held()
	if pool.ServerErrors.Total() > 0 {
		r.note("the server sent errors; client events may be disabled for this app (soketi: enableClientMessages)")
	}
	stop()
	return r.finish(cfg.Conns, pool), nil
}
