package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// IdleConfig: hold Conns connections (each subscribed to one of Channels
// public channels, if Channels > 0) for Hold after settling, and report
// the server's resident memory per connection.
type IdleConfig struct {
	Common
	Channels int
	Hold     time.Duration
}

// RunIdle runs the idle scenario. The connect storm's time is from the
// first dial to the last subscription confirmed (connect_concurrency
// connections in flight at a time, no rate limit unless configured), with
// the server's CPU over it. Memory per connection is the growth of
// the server's RSS from before the first connection to the end of the
// hold, divided by the connections held; CPU over the hold shows what idle
// connections cost (pings, timers).
func RunIdle(ctx context.Context, cfg IdleConfig, env Env) (*Report, error) {
	if cfg.Conns <= 0 || cfg.Channels < 0 || cfg.Hold < 0 {
		return nil, errors.New("idle: conns must be > 0, channels and hold >= 0")
	}
	params := map[string]any{"conns": cfg.Conns, "channels": cfg.Channels, "hold_s": cfg.Hold.Seconds(), "settle_s": cfg.Settle.Seconds()}
	r, err := newRunner("idle", cfg.Common, cfg.Conns, env, params)
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()

	pool := NewPool(cfg.Common, r.clock, r.log, nil)
	defer pool.CloseAll(30 * time.Second)
	n := r.capConns(cfg.Conns)
	var phase atomic.Pointer[string] // read by the progress goroutine
	setPhase := func(s string) { phase.Store(&s) }
	setPhase("connecting")
	stop := r.startProgress(ctx, func() string {
		return fmt.Sprintf("%s: %d/%d held, connect errors %d", *phase.Load(), pool.Held(), n, pool.ConnectErrors.Total())
	})
	defer stop()

	srv0, srvOK := r.server.sample()
	self0, _ := r.self.sample()
	var setup SetupFunc
	if cfg.Channels > 0 {
		setup = func(ctx context.Context, c *Conn) error {
			return c.Subscribe(ctx, fmt.Sprintf("sb-idle-%d", c.ID%cfg.Channels), "", "")
		}
	}
	r.log.Info("connecting", "conns", n)
	t0 := r.clock.Now()
	held := pool.ConnectN(ctx, n, setup)
	stormS := time.Duration(r.clock.Now() - t0).Seconds()
	srvC, _ := r.server.sample()
	selfC, _ := r.self.sample()
	r.log.Info("connected", "held", held, "connect_errors", pool.ConnectErrors.Total(), "setup_errors", pool.SetupErrors.Total())
	go pool.KeepAlive(ctx)

	setPhase("settling")
	sleepCtx(ctx, cfg.Settle)
	setPhase("holding")
	srv1, _ := r.server.sample()
	sleepCtx(ctx, cfg.Hold)
	srv2, _ := r.server.sample()
	self2, _ := r.self.sample()
	still := pool.Held()

	res := &IdleResult{Held: held, HoldS: cfg.Hold.Seconds(), Lost: held - still, ConnectS: roundTo(stormS, 3)}
	if srvOK && srv2.RSSBytes > 0 {
		res.ServerCPUConnectS = roundTo(Delta(srv0, srvC).CPU.Seconds(), 3)
		res.GenCPUConnectS = roundTo(Delta(self0, selfC).CPU.Seconds(), 3)
		res.ServerRSSBeforeBytes = srv0.RSSBytes
		res.ServerRSSAfterBytes = srv2.RSSBytes
		if held > 0 {
			res.ServerRSSPerConnBytes = roundTo(float64(srv2.RSSBytes-srv0.RSSBytes)/float64(held), 0)
		}
		res.ServerCoresIdle = roundTo(Delta(srv1, srv2).Cores(), 4)
	}
	if held > 0 && self2.RSSBytes > 0 {
		res.GenRSSPerConnBytes = roundTo(float64(self2.RSSBytes-self0.RSSBytes)/float64(held), 0)
	}
	r.rep.Idle = res
	r.rep.Conns.Held = held
	r.rep.Conns.Lost = res.Lost
	if ctx.Err() != nil {
		r.note("run ended early: " + ctx.Err().Error())
	}
	stop()
	return r.finish(cfg.Conns, pool), nil
}
