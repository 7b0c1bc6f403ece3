package timewheel

import (
	"testing"
	"time"
)

func TestSpreadStaysWithinAnEighthAboveAndVaries(t *testing.T) {
	const d = 120 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		s := Spread(d)
		if s < d || s >= d+d/8 {
			t.Fatalf("Spread(%v) = %v, want within [%v, %v)", d, s, d, d+d/8)
		}
		seen[s/time.Second] = true
	}
	// 1,000 draws over 15 one-second buckets: every bucket is hit unless
	// the spread is broken.
	if len(seen) != 15 {
		t.Fatalf("1000 draws fell in %d of 15 one-second buckets", len(seen))
	}
	if Spread(0) != 0 || Spread(5) != 5 {
		t.Fatal("a duration too short to spread must come back unchanged")
	}
}
