package timewheel

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTimerFiresAfterItsTicks(t *testing.T) {
	w := New(10*time.Millisecond, 8)
	var fired atomic.Int32
	// The first Advance may come right after scheduling, so a 3-tick timer
	// fires on the 4th: never before 3 whole ticks have passed.
	w.Schedule(30*time.Millisecond, func() { fired.Add(1) })
	for i := 0; i < 3; i++ {
		w.Advance()
		if fired.Load() != 0 {
			t.Fatalf("fired early at tick %d", i+1)
		}
	}
	w.Advance()
	if fired.Load() != 1 {
		t.Fatalf("fired %d times after 4 ticks, want 1", fired.Load())
	}
	for i := 0; i < 20; i++ {
		w.Advance()
	}
	if fired.Load() != 1 {
		t.Fatalf("fired again: %d", fired.Load())
	}
}

func TestTimerLongerThanOneRevolution(t *testing.T) {
	w := New(time.Millisecond, 4)
	var at int
	tick := 0
	w.Schedule(10*time.Millisecond, func() { at = tick })
	for tick = 1; tick <= 20; tick++ {
		w.Advance()
	}
	if at != 11 {
		t.Fatalf("fired at tick %d, want 11", at)
	}
}

func TestStopAndReset(t *testing.T) {
	w := New(time.Millisecond, 16)
	var fired atomic.Int32
	tm := w.Schedule(2*time.Millisecond, func() { fired.Add(1) })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if tm.Stop() {
		t.Fatal("second Stop reported true")
	}
	for i := 0; i < 5; i++ {
		w.Advance()
	}
	if fired.Load() != 0 {
		t.Fatal("stopped timer fired")
	}
	tm.Reset(3 * time.Millisecond)
	tm.Reset(5 * time.Millisecond) // re-arming moves it, never duplicates it
	for i := 0; i < 5; i++ {
		w.Advance()
	}
	if fired.Load() != 0 {
		t.Fatal("reset timer fired at its old deadline")
	}
	w.Advance()
	if fired.Load() != 1 {
		t.Fatalf("fired %d, want 1", fired.Load())
	}
}

func TestCallbackMayRescheduleItself(t *testing.T) {
	w := New(time.Millisecond, 8)
	var n int
	var tm *Timer
	tm = w.NewTimer(func() {
		n++
		if n < 3 {
			tm.Reset(time.Millisecond)
		}
	})
	tm.Reset(time.Millisecond)
	for i := 0; i < 12; i++ {
		w.Advance()
	}
	if n != 3 {
		t.Fatalf("ran %d times, want 3", n)
	}
}

// BenchmarkResetStop is the per-connection cost of re-arming an activity timer.
func BenchmarkResetStop(b *testing.B) {
	w := New(100*time.Millisecond, 1024)
	timers := make([]*Timer, 10000)
	for i := range timers {
		timers[i] = w.Schedule(time.Duration(i%500)*time.Millisecond, func() {})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timers[i%len(timers)].Reset(120 * time.Second)
	}
}
