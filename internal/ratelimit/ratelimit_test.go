package ratelimit

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestBucketBurstThenRate(t *testing.T) {
	clk := newClock()
	k := NewKeyed[string](Rate{PerSecond: 2, Burst: 3}, Options{Now: clk.Now})
	for i := range 3 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("burst call %d refused", i)
		}
	}
	ok, wait := k.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th: ok %v wait %v, want refused with 500ms", ok, wait)
	}
	// Another key has its own bucket.
	if ok, _ := k.Allow("b"); !ok {
		t.Fatal("b refused")
	}
	clk.Add(499 * time.Millisecond)
	if ok, wait := k.Allow("a"); ok || wait != time.Millisecond {
		t.Fatalf("at 499ms: ok %v wait %v", ok, wait)
	}
	clk.Add(time.Millisecond)
	if ok, _ := k.Allow("a"); !ok {
		t.Fatal("a token is due after 500ms")
	}
	// A long quiet spell refills to the burst, not beyond.
	clk.Add(time.Hour)
	for i := range 3 {
		if ok, _ := k.Allow("a"); !ok {
			t.Fatalf("after refill, call %d refused", i)
		}
	}
	if ok, _ := k.Allow("a"); ok {
		t.Fatal("bucket grew past its burst")
	}
}

func TestOffAndNilAllowAll(t *testing.T) {
	if k := NewKeyed[string](Rate{PerSecond: 0, Burst: 5}, Options{}); k != nil {
		t.Fatal("rate 0 must give the nil (allow-all) table")
	}
	var k *Keyed[string]
	if ok, _ := k.Allow("x"); !ok || k.Len() != 0 {
		t.Fatal("nil table refused")
	}
	var c *Connections
	if ok, _ := c.Allow(netip.MustParseAddr("1.2.3.4")); !ok {
		t.Fatal("nil Connections refused")
	}
}

func TestBurstBelowOneIsOne(t *testing.T) {
	k := NewKeyed[int](Rate{PerSecond: 1}, Options{Now: newClock().Now})
	if ok, _ := k.Allow(1); !ok {
		t.Fatal("first refused")
	}
	if ok, wait := k.Allow(1); ok || wait != time.Second {
		t.Fatalf("second: %v %v", ok, wait)
	}
}

// A flood of distinct keys keeps the table at its bound, and the least
// recently seen key is the one forgotten.
func TestTableIsBounded(t *testing.T) {
	clk := newClock()
	const max = 64
	k := NewKeyed[int](Rate{PerSecond: 1, Burst: 1}, Options{MaxKeys: max, Now: clk.Now})
	if ok, _ := k.Allow(-1); !ok {
		t.Fatal("first call refused")
	}
	for i := range 100_000 {
		k.Allow(i)
		if i%3 == 0 {
			// A shard holds max/16 = 4 keys: with at most 3 new keys
			// between uses, -1 is never the least recently used.
			k.Allow(-1)
		}
	}
	if n := k.Len(); n > max {
		t.Fatalf("table holds %d keys, bound %d", n, max)
	}
	if ok, _ := k.Allow(-1); ok {
		t.Fatal("a recently used key was forgotten (its empty bucket refilled)")
	}
	// Key 0 was pushed out long ago: it is remembered no more, so it
	// gets a fresh bucket.
	if ok, _ := k.Allow(0); !ok {
		t.Fatal("an evicted key should start over with a full bucket")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 10 * time.Second: 10} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}

func TestConcurrentUseCountsEveryToken(t *testing.T) {
	clk := newClock() // frozen: exactly Burst calls may pass
	k := NewKeyed[string](Rate{PerSecond: 1, Burst: 500}, Options{Now: clk.Now})
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 200 {
				if ok, _ := k.Allow("same"); ok {
					n++
				}
			}
			mu.Lock()
			passed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if passed != 500 {
		t.Fatalf("%d passed, want exactly the burst of 500", passed)
	}
}

func TestTinyRateWaitIsClamped(t *testing.T) {
	k := NewKeyed[int](Rate{PerSecond: 1e-15, Burst: 1}, Options{Now: newClock().Now})
	k.Allow(1)
	if ok, wait := k.Allow(1); ok || wait != 24*time.Hour {
		t.Fatalf("%v %v", ok, wait)
	}
}
