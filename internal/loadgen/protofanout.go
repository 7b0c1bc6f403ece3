package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// protoFanout is what the Damon and ws-room scenarios share: open the
// connections (each completing its protocol's handshake), measure the
// server's memory per idle connection, then ramp the fan-out rate. Neither
// protocol has an HTTP publish: a few of the generator's own connections
// send, as the protocol's services and peers do.
type protoFanout struct {
	r    *runner
	pool *msgPool
	// n is the number of connections to open.
	n    int
	dial msgDialFunc
	ramp ramp
	// steps is where the receivers (set up by the scenario with the pool)
	// record deliveries.
	steps *stepTable
	// prepare runs once the connections are held and returns the ramp's
	// send function (it decides who sends and how many should receive).
	prepare func(conns []*msgConn) (rampSend, error)
}

// run returns the report; the idle figures are in Report.Idle (hold_s is
// the settle time), the ramp's in Steps and Best.
func (f protoFanout) run(ctx context.Context) (*Report, error) {
	r := f.r
	ctx, cancel := r.withDeadline(ctx)
	defer cancel()
	pool := f.pool
	defer pool.CloseAll(10 * time.Second)
	stop := r.startProgress(ctx, func() string {
		return r.stepStatus(func() string {
			return fmt.Sprintf("connecting %d/%d (connect errors %d, handshake errors %d)",
				pool.Held(), f.n, pool.ConnectErrors.Total(), pool.SetupErrors.Total())
		})
	})
	defer stop()

	srv0, srvOK := r.server.sample()
	self0, _ := r.self.sample()
	r.log.Info("connecting", "conns", f.n)
	held := pool.ConnectN(ctx, f.n, f.dial)
	r.log.Info("connected", "held", held, "connect_errors", pool.ConnectErrors.Total(), "handshake_errors", pool.SetupErrors.Total())
	r.rep.Conns.Held = held
	if held == 0 {
		stop()
		return r.finishStats(f.n, pool.stats()), errors.New(r.rep.Scenario + ": no connection completed its handshake")
	}
	srv1, _ := r.server.sample()
	sleepCtx(ctx, r.cfg.Settle)
	srv2, _ := r.server.sample()
	self2, _ := r.self.sample()
	idle := &IdleResult{Held: held, HoldS: r.cfg.Settle.Seconds()}
	if srvOK && srv2.RSSBytes > 0 {
		idle.ServerRSSBeforeBytes = srv0.RSSBytes
		idle.ServerRSSAfterBytes = srv2.RSSBytes
		idle.ServerRSSPerConnBytes = roundTo(float64(srv2.RSSBytes-srv0.RSSBytes)/float64(held), 0)
		idle.ServerCoresIdle = roundTo(Delta(srv1, srv2).Cores(), 4)
	}
	if self2.RSSBytes > 0 {
		idle.GenRSSPerConnBytes = roundTo(float64(self2.RSSBytes-self0.RSSBytes)/float64(held), 0)
	}
	r.rep.Idle = idle

	send, err := f.prepare(pool.Conns())
	if err != nil {
		stop()
		return r.finishStats(f.n, pool.stats()), err
	}
	f.ramp.run(ctx, r, f.steps, send)
	idle.Lost = held - pool.Held()
	r.rep.Conns.Lost = idle.Lost
	stop()
	return r.finishStats(f.n, pool.stats()), nil
}
