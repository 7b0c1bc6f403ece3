package loadgen

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeTime is a manual clock: sleeping jumps straight to the wake-up time,
// and work "takes" time only when a test advances it explicitly.
type fakeTime struct{ now int64 }

func (f *fakeTime) Now() int64 { return f.now }
func (f *fakeTime) sleepUntil(ctx context.Context, ns int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ns > f.now {
		f.now = ns
	}
	return nil
}

func TestScheduleDueHasNoDrift(t *testing.T) {
	s := Schedule{Start: 1000, Rate: 3, Count: 3_000_000}
	// 1/3 s is not representable exactly; computing from the index must still
	// land on whole seconds every third event, even far into the run.
	for _, i := range []int64{0, 3, 300, 2_999_997} {
		want := int64(1000) + i/3*int64(time.Second)
		if got := s.Due(i); got != want {
			t.Fatalf("Due(%d) = %d, want %d", i, got, want)
		}
	}
	if got := NewSchedule(0, 50, 2*time.Second).Count; got != 100 {
		t.Fatalf("NewSchedule count = %d, want 100", got)
	}
}

func TestScheduleRunsOnTime(t *testing.T) {
	ft := &fakeTime{}
	s := Schedule{Start: 0, Rate: 100, Count: 50}
	var got []int64
	n, err := s.Run(context.Background(), ft, 0, func(i, due int64) {
		if ft.now != due {
			t.Errorf("event %d ran at %d, due %d", i, ft.now, due)
		}
		got = append(got, due)
	})
	if err != nil || n != 50 || len(got) != 50 {
		t.Fatalf("Run = %d, %v (%d events)", n, err, len(got))
	}
	if got[49] != 490*int64(time.Millisecond) {
		t.Fatalf("last due = %d", got[49])
	}
}

// A stall must not stretch the schedule: the overdue events run back to back
// and keep their original due times (so their latency includes the stall).
func TestScheduleCatchesUpWithoutCoordinatedOmission(t *testing.T) {
	ft := &fakeTime{}
	s := Schedule{Start: 0, Rate: 10, Count: 10} // every 100 ms
	type ev struct{ i, due, ranAt int64 }
	var evs []ev
	_, err := s.Run(context.Background(), ft, 0, func(i, due int64) {
		evs = append(evs, ev{i, due, ft.now})
		if i == 2 {
			ft.now += int64(450 * time.Millisecond) // event 2 takes 450 ms
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 10 {
		t.Fatalf("ran %d events", len(evs))
	}
	for _, e := range evs {
		if e.due != int64(e.i)*int64(100*time.Millisecond) {
			t.Fatalf("event %d due %d: schedule was shifted", e.i, e.due)
		}
	}
	// Events 3..6 were overdue (due 300..600 ms, stall ended at 650 ms) and
	// ran immediately at 650 ms; event 7 is on time again.
	for i := 3; i <= 6; i++ {
		if evs[i].ranAt != int64(650*time.Millisecond) {
			t.Fatalf("overdue event %d ran at %v", i, time.Duration(evs[i].ranAt))
		}
		if lag := s.Lag(int64(i), evs[i].ranAt); lag != time.Duration(650-100*i)*time.Millisecond {
			t.Fatalf("lag of %d = %v", i, lag)
		}
	}
	if evs[7].ranAt != evs[7].due {
		t.Fatalf("event 7 ran at %d, due %d", evs[7].ranAt, evs[7].due)
	}
}

func TestScheduleBoundedByTimeAndContext(t *testing.T) {
	ft := &fakeTime{}
	s := Schedule{Start: 0, Rate: 1000, Count: 1_000_000}
	n, err := s.Run(context.Background(), ft, int64(10*time.Millisecond), func(int64, int64) {})
	if !errors.Is(err, ErrScheduleDeadline) || n != 11 {
		t.Fatalf("deadline: n=%d err=%v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err = s.Run(ctx, ft, 0, func(i, _ int64) {
		if i == 4 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n != 5 {
		t.Fatalf("cancel: n=%d err=%v", n, err)
	}
	if _, err := (Schedule{Rate: 0, Count: 1}).Run(context.Background(), ft, 0, func(int64, int64) {}); err == nil {
		t.Fatal("zero rate accepted")
	}
}

func TestScheduleRealClock(t *testing.T) {
	c := NewClock()
	s := Schedule{Start: c.Now(), Rate: 200, Count: 20} // 100 ms
	var late int64
	n, err := s.Run(context.Background(), c, 0, func(i, due int64) {
		if now := c.Now(); now < due {
			t.Errorf("event %d ran early", i)
		} else {
			late = max(late, now-due)
		}
	})
	if err != nil || n != 20 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if el := c.Now() - s.Start; el < int64(95*time.Millisecond) {
		t.Fatalf("schedule finished too fast: %v", time.Duration(el))
	}
}
