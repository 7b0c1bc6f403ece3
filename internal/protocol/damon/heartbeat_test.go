package damon

import (
	"testing"
	"time"
)

// The heartbeat with a short interval (the transcript used 3000 ms; the
// rules are the same at 300 ms).
const testPing = 300 * time.Millisecond

func TestHeartbeat(t *testing.T) {
	forEachTransportWith(t, func(o *Options) { o.PingInterval = testPing }, func(t *testing.T, e *testEnv, dial dialer) {
		good := dial(e, "GOOD")
		good.send(`{"op":1,"data":{"group":"g","token":"secret"}}`)
		good.identifyReply(300) // the IDENTIFY reply carries the interval in ms
		good.autoPong()         // answers every PING from now on
		lazy, selfPinger := dial(e, "LAZY"), dial(e, "SELFPING")
		start := time.Now()

		// LAZY never answers: PING on the first tick (0 to one interval
		// after connecting), PING_TIMEOUT on the next one.
		lazy.expect(`{"op":3}`)
		lazy.expect(`{"op":2,"data":"PING_TIMEOUT"}`)
		total := time.Since(start)
		lazy.expectClosed()
		// Generous upper slack: the shared 2-core VM delays goroutines.
		if total < testPing-50*time.Millisecond || total > 2*testPing+400*time.Millisecond {
			t.Fatalf("PING_TIMEOUT %v after connecting; want between one and two intervals (%v)", total, testPing)
		}
		if lazy.ws && lazy.closeCode != 1000 {
			t.Fatalf("close code %d", lazy.closeCode)
		}

		// SELFPING sends its own PINGs and gets PONGs, but that is not
		// liveness: only {"op":4} counts.
		timedOut := false
		for deadline := time.Now().Add(4 * testPing); !timedOut && time.Now().Before(deadline); {
			if err := selfPinger.write(`{"op":3}`); err != nil {
				// SELFPING was dialed with LAZY, so the server may already
				// have timed it out and closed: what it sent before closing
				// is still queued here.
				for !timedOut {
					switch doc := selfPinger.nextWithin(time.Second); doc {
					case `{"op":2,"data":"PING_TIMEOUT"}`:
						timedOut = true
					case `{"op":3}`, `{"op":4}`:
					default:
						t.Fatalf("SELFPING got %s", doc)
					}
				}
				break
			}
		read:
			for {
				switch doc := selfPinger.nextWithin(time.Second); doc {
				case `{"op":4}`:
					break read
				case `{"op":2,"data":"PING_TIMEOUT"}`:
					timedOut = true
					break read
				case `{"op":3}`:
				default:
					t.Fatalf("SELFPING got %s", doc)
				}
			}
			time.Sleep(testPing / 5)
		}
		if !timedOut {
			t.Fatal("a client that only sends PINGs was not timed out")
		}
		selfPinger.expectClosed()

		// GOOD stays through many intervals.
		time.Sleep(5 * testPing)
		if n := good.pings.Load(); n < int64((time.Since(start)/testPing)-2) {
			t.Fatalf("GOOD answered %d pings in %v", n, time.Since(start))
		}
		good.ping()
		if n := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "PING_TIMEOUT"}); n != 2 {
			t.Fatalf("PING_TIMEOUT counter %v", n)
		}
	})
}

// Extra or early PONGs are harmless; a PONG only answers the last PING.
func TestPongAnswersOnlyTheLastPing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PingInterval = testPing })
	c := e.dialTCP("C")
	c.expect(`{"op":3}`)
	time.Sleep(testPing / 2)
	c.send(`{"op":4}`) // in time
	c.expect(`{"op":3}`)
	c.send(`{"op":4}`)
	c.send(`{"op":4}`) // extra PONGs are harmless
	c.expect(`{"op":3}`)
	c.expect(`{"op":2,"data":"PING_TIMEOUT"}`)
	c.expectClosed()
}
