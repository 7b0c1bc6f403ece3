package loadgen

import (
	"strings"
	"testing"
	"time"
)

// The progress line of a rate step says what the issue asks a long run to
// show: the step, the offered rate, deliveries/s and p99 so far.
func TestStepProgressStatus(t *testing.T) {
	var p stepProgress
	if got := p.status(0); got != "" {
		t.Fatalf("before any step: %q", got)
	}
	st := newStepStats()
	live := &liveStep{index: 2, total: 5, name: "40/s", rate: 40, st: st, startNs: 0}
	p.set(live)
	st.sent.Add(80)
	st.expected.Add(4000)
	for i := range 4000 {
		d := time.Millisecond
		if i >= 3960 { // the slowest 1 %: p99 is 1 ms, the top is 50 ms
			d = 50 * time.Millisecond
		}
		st.rec.Record(i, d, 0)
	}
	got := p.status(int64(2 * time.Second))
	for _, want := range []string{"step 3/5 40/s", "offered 40/s", "sent 80", "2000 deliveries/s", "p99 1.00ms so far", "received 4000/4000"} {
		if !strings.Contains(got, want) {
			t.Errorf("status %q lacks %q", got, want)
		}
	}
	// Once measured, the step's rate is over its own window, not until now.
	live.endNs.Store(int64(4 * time.Second))
	got = p.status(int64(60 * time.Second))
	for _, want := range []string{"1000 deliveries/s", "p99 1.00ms (step done)"} {
		if !strings.Contains(got, want) {
			t.Errorf("status after the step %q lacks %q", got, want)
		}
	}
}
