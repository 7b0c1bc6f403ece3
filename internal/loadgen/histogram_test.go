package loadgen

import (
	"sync"
	"testing"
	"time"
)

func TestRecorderPercentiles(t *testing.T) {
	r := NewRecorder()
	// 1..1000 ms, one each, spread over shards.
	for i := 1; i <= 1000; i++ {
		r.Record(i, time.Duration(i)*time.Millisecond, int64(i))
	}
	l := r.Summary()
	if l.Count != 1000 {
		t.Fatalf("count %d", l.Count)
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.999 || got > want*1.001 {
			t.Errorf("%s = %.3f ms, want ≈ %.3f", name, got, want)
		}
	}
	check("p50", l.P50Ms, 500)
	check("p90", l.P90Ms, 900)
	check("p99", l.P99Ms, 990)
	check("p99.9", l.P999Ms, 999)
	check("max", l.MaxMs, 1000)
	check("mean", l.MeanMs, 500.5)
	_, last, _ := r.Snapshot()
	if last != 1000 {
		t.Fatalf("lastNs = %d", last)
	}
}

func TestRecorderClampsAndFloors(t *testing.T) {
	r := NewRecorder()
	r.Record(0, 0, 0)            // below 1 µs → 1 µs
	r.Record(1, -time.Second, 0) // clock oddity → 1 µs, not an error
	r.Record(2, time.Hour, 0)    // above the top → clamped and counted
	h, _, clamped := r.Snapshot()
	if h.TotalCount() != 3 || clamped != 1 {
		t.Fatalf("count %d clamped %d", h.TotalCount(), clamped)
	}
	if h.Min() != 1 {
		t.Fatalf("min %d", h.Min())
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Fatalf("Summarize(nil) = %+v", got)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				r.Record(g, time.Duration(i)*time.Microsecond, int64(i))
				if i%1000 == 0 {
					_ = r.Count()
				}
			}
		}()
	}
	wg.Wait()
	if n := r.Count(); n != 40000 {
		t.Fatalf("count %d", n)
	}
}
