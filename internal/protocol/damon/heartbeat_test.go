package damon

import (
	"testing"
	"time"
)

// The heartbeat interval the IDENTIFY reply announces in these tests. The
// ticks themselves are stepped by hand (Server.tick), so no test waits for
// an interval to pass.
const testPing = 300 * time.Millisecond

func stepped(o *Options) {
	o.PingInterval = testPing
	o.manualHeartbeat = true
}

// pong answers the server's PING, then makes sure the server has acted on
// the answer before the test steps the next tick: a client PING sent after
// it is answered only once the PONG was handled (one reader per
// connection, in order).
func (c *client) pong() {
	c.t.Helper()
	c.send(`{"op":4}`)
	c.ping()
}

func TestHeartbeat(t *testing.T) {
	forEachTransportWith(t, stepped, func(t *testing.T, e *testEnv, dial dialer) {
		good := dial(e, "GOOD")
		good.send(`{"op":1,"data":{"group":"g","token":"secret"}}`)
		good.identifyReply(300) // the IDENTIFY reply carries the interval in ms
		lazy, selfPinger := dial(e, "LAZY"), dial(e, "SELFPING")
		lazy.ping() // registered before the first tick
		selfPinger.ping()

		// First tick: every connection gets a PING.
		e.srv.tick()
		for _, c := range []*client{good, lazy, selfPinger} {
			c.expect(`{"op":3}`)
		}
		good.pong()
		// SELFPING sends its own PING and gets a PONG, but that is not
		// liveness: only {"op":4} counts.
		selfPinger.ping()

		// Second tick: the two that did not answer are timed out.
		e.srv.tick()
		for _, c := range []*client{lazy, selfPinger} {
			c.expect(`{"op":2,"data":"PING_TIMEOUT"}`)
			c.expectClosed()
			if c.ws && c.closeCode != 1000 {
				t.Fatalf("%s: close code %d", c.name, c.closeCode)
			}
		}

		// GOOD stays through many intervals.
		good.expect(`{"op":3}`)
		good.pong()
		for range 8 {
			e.srv.tick()
			good.expect(`{"op":3}`)
			good.pong()
		}
		if n := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "PING_TIMEOUT"}); n != 2 {
			t.Fatalf("PING_TIMEOUT counter %v", n)
		}
	})
}

// Extra or early PONGs are harmless; a PONG only answers the last PING.
func TestPongAnswersOnlyTheLastPing(t *testing.T) {
	e := newEnv(t, stepped)
	c := e.dialTCP("C")
	c.pong() // before any PING: harmless
	e.srv.tick()
	c.expect(`{"op":3}`)
	c.pong() // in time
	e.srv.tick()
	c.expect(`{"op":3}`)
	c.pong()
	c.pong() // extra PONGs are harmless
	e.srv.tick()
	c.expect(`{"op":3}`) // not answered
	e.srv.tick()
	c.expect(`{"op":2,"data":"PING_TIMEOUT"}`)
	c.expectClosed()
}

// The real ticker drives the same rules: a client that never answers is
// pinged, then timed out. Only the order is asserted; how long it took is
// the ticker's business (a timing bound would fail on a loaded machine).
func TestHeartbeatTicker(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PingInterval = 20 * time.Millisecond })
	c := e.dialTCP("LAZY")
	c.expect(`{"op":3}`)
	c.expect(`{"op":2,"data":"PING_TIMEOUT"}`)
	c.expectClosed()
}
