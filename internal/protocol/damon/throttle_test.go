package damon

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Unix(1_700_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// nextOrEnd returns the next document, or "" when the server ended the
// connection with nothing more queued.
func (c *client) nextOrEnd() string {
	c.t.Helper()
	select {
	case doc := <-c.docs:
		return doc
	case <-c.done:
		select {
		case doc := <-c.docs:
			return doc
		default:
			return ""
		}
	case <-time.After(3 * time.Second):
		c.t.Fatalf("%s: neither a document nor the end within 3 s", c.name)
	}
	return ""
}

var (
	guesser = net.IPv4(127, 0, 0, 1)
	service = net.IPv4(127, 0, 0, 2)
)

const (
	wrongIdentify   = `{"op":1,"data":{"group":"g","token":"guess"}}`
	correctIdentify = `{"op":1,"data":{"group":"g","token":"` + testToken + `"}}`
	identifyFailed  = `{"op":2,"data":"IDENTIFY_FAILED"}`
)

// Issue 10 hole 4: 100 wrong tokens from one address. Only the burst is
// checked and answered with the reference's IDENTIFY_FAILED; the rest, and
// even a correct token from that address, are closed unchecked (WebSocket
// 1013) until the clock refills the budget; another address identifies at
// once throughout. The clock is the test's: counts, not timings.
func TestIdentifyFailuresThrottledPerAddress(t *testing.T) {
	for _, tr := range []struct {
		name string
		dial func(e *testEnv, ip net.IP, name string) *client
	}{
		{"tcp", (*testEnv).dialTCPFrom},
		{"ws", (*testEnv).dialWSFrom},
	} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			const burst = 3
			clk := newTestClock()
			e := newEnv(t, func(o *Options) {
				o.IdentifyFailBurst = burst
				o.IdentifyFailInterval = time.Minute
				o.Now = clk.Now
			})
			// attempt sends one IDENTIFY on a fresh connection from ip and
			// reports whether it was answered (else: closed with nothing).
			attempt := func(ip net.IP, doc string) (answer string) {
				t.Helper()
				c := tr.dial(e, ip, "C")
				c.send(doc)
				answer = c.nextOrEnd()
				wantCode := 1013
				switch answer {
				case "":
				case identifyFailed:
					wantCode = 1008
					c.expectClosed()
				default:
					c.t.Helper()
					if doc != correctIdentify {
						t.Fatalf("answer %s", answer)
					}
					c.docs <- answer
					c.identifyReply(30000)
					c.ping() // identified and still open
					return answer
				}
				c.mu.Lock()
				code := c.closeCode
				c.mu.Unlock()
				if c.ws && int(code) != wantCode {
					t.Fatalf("close code %d, want %d (answer %q)", code, wantCode, answer)
				}
				return answer
			}

			answered := 0
			for i := range 100 {
				switch got := attempt(guesser, wrongIdentify); got {
				case identifyFailed:
					answered++
					if i >= burst {
						t.Fatalf("attempt %d answered after %d", i, answered-1)
					}
				case "":
				default:
					t.Fatalf("attempt %d: %s", i, got)
				}
			}
			if answered != burst {
				t.Fatalf("%d of 100 wrong tokens answered, want %d", answered, burst)
			}
			// The correct token from the throttled address is not checked.
			if got := attempt(guesser, correctIdentify); got != "" {
				t.Fatalf("correct token from a throttled address answered %s", got)
			}
			// Another address is unaffected, and has its own budget.
			if got := attempt(service, correctIdentify); got == "" || got == identifyFailed {
				t.Fatalf("another address: %q", got)
			}
			if got := attempt(service, wrongIdentify); got != identifyFailed {
				t.Fatalf("another address's first wrong token: %q", got)
			}

			// One interval later the guesser has one attempt again. A
			// correct token succeeds and gives its token back, so one
			// wrong guess is still answered; the next is not.
			clk.Advance(time.Minute)
			if got := attempt(guesser, correctIdentify); got == "" || got == identifyFailed {
				t.Fatalf("correct token after the refill: %q", got)
			}
			if got := attempt(guesser, wrongIdentify); got != identifyFailed {
				t.Fatalf("wrong token after the refill: %q", got)
			}
			if got := attempt(guesser, wrongIdentify); got != "" {
				t.Fatalf("second wrong token after the refill: %q", got)
			}

			rejected := func(reason string) float64 {
				return e.counter("switchboard_damon_identify_rejected_total", map[string]string{"reason": reason})
			}
			if got := rejected("bad_token"); got != burst+2 {
				t.Errorf("rejected{bad_token} %v, want %d", got, burst+2)
			}
			if got := rejected("throttled"); got != 100-burst+2 {
				t.Errorf("rejected{throttled} %v, want %d", got, 100-burst+2)
			}
			if got := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "IDENTIFY_FAILED"}); got != burst+2 {
				t.Errorf("disconnects{IDENTIFY_FAILED} %v, want %d", got, burst+2)
			}
		})
	}
}

// A negative burst turns throttling off: every attempt is checked.
func TestIdentifyThrottleOff(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.IdentifyFailBurst = -1 })
	for range 30 {
		c := e.dialTCP("C")
		c.send(wrongIdentify)
		c.expect(identifyFailed)
		c.expectClosed()
	}
}

func TestSourceKey(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 1, Zone: "eth0"}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, "invalid Prefix"},
	} {
		if got := sourceKey(c.addr).String(); got != c.want {
			t.Errorf("%v: %s, want %s", c.addr, got, c.want)
		}
	}
	// Two addresses of one /64 share a bucket.
	a := sourceKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1")})
	b := sourceKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9")})
	if a != b {
		t.Fatalf("%v != %v", a, b)
	}
}

func addr4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

// The table never tracks more than its maximum; past it, new addresses
// share the overflow bucket (so many addresses cannot multiply the
// budget), and refilled buckets are swept to make room again.
func TestIdentifyLimiterBounded(t *testing.T) {
	clk := newTestClock()
	const maxAddrs, burst = 100, 2
	l := newIdentifyLimiter(burst, time.Second, maxAddrs, clk.Now)
	for i := range maxAddrs {
		if ok, _ := l.take(addr4(i)); !ok {
			t.Fatalf("address %d refused its first attempt", i)
		}
	}
	if l.tracked() != maxAddrs {
		t.Fatalf("tracked %d", l.tracked())
	}
	// 1,000 more addresses: none tracked, all share burst attempts.
	allowed := 0
	for i := maxAddrs; i < maxAddrs+1000; i++ {
		if ok, _ := l.take(addr4(i)); ok {
			allowed++
		}
	}
	if allowed != burst || l.tracked() != maxAddrs {
		t.Fatalf("overflow allowed %d (want %d), tracked %d", allowed, burst, l.tracked())
	}
	// Once the tracked buckets have refilled they are swept.
	clk.Advance(time.Second)
	if ok, _ := l.take(addr4(5000)); !ok {
		t.Fatal("new address refused after the sweep")
	}
	if l.tracked() != 1 {
		t.Fatalf("tracked %d after the sweep, want 1", l.tracked())
	}
}

// Refill is gradual, capped at the burst; give back restores a token;
// first is reported once per throttling episode.
func TestIdentifyLimiterRefill(t *testing.T) {
	clk := newTestClock()
	l := newIdentifyLimiter(3, 10*time.Second, 10, clk.Now)
	k := addr4(1)
	for range 3 {
		if ok, _ := l.take(k); !ok {
			t.Fatal("refused within the burst")
		}
	}
	if ok, first := l.take(k); ok || !first {
		t.Fatalf("4th: ok %v first %v, want refused, first", ok, first)
	}
	if ok, first := l.take(k); ok || first {
		t.Fatalf("5th: ok %v first %v, want refused, not first", ok, first)
	}
	clk.Advance(9 * time.Second)
	if ok, _ := l.take(k); ok {
		t.Fatal("allowed before a whole interval")
	}
	clk.Advance(time.Second)
	if ok, _ := l.take(k); !ok {
		t.Fatal("refused after an interval")
	}
	l.giveBack(k)
	if ok, _ := l.take(k); !ok {
		t.Fatal("given-back token missing")
	}
	clk.Advance(time.Hour)
	n := 0
	for {
		if ok, _ := l.take(k); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d attempts after a long pause, want the burst (3)", n)
	}
	if newIdentifyLimiter(-1, time.Second, 10, clk.Now) != nil {
		t.Fatal("negative burst should disable the limiter")
	}
}
