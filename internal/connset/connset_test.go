package connset

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestDrainEndsEveryoneAndWaitsForTheLast(t *testing.T) {
	var s Set[int]
	for i := 0; i < 5; i++ {
		if s.Add(i) {
			t.Fatal("draining before Drain")
		}
	}
	var mu sync.Mutex
	var ended []int
	done := make(chan struct{})
	go func() {
		s.Drain(context.Background(), func(c int) {
			mu.Lock()
			ended = append(ended, c)
			mu.Unlock()
			// Connections close asynchronously, as sockets do.
			go func() { time.Sleep(10 * time.Millisecond); s.Remove(c) }()
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after every connection was removed")
	}
	if len(ended) != 5 || s.Len() != 0 || !s.Draining() {
		t.Fatalf("ended %v, len %d, draining %v", ended, s.Len(), s.Draining())
	}
	if !s.Add(9) {
		t.Fatal("Add during drain must report draining so the caller ends it")
	}
}

func TestDrainIsBoundedByContext(t *testing.T) {
	var s Set[string]
	s.Add("stuck") // never removed
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.Drain(ctx, func(string) {})
	if time.Since(start) > 2*time.Second {
		t.Fatal("Drain ignored its context")
	}
}

func TestDrainOfAnEmptySetReturnsAtOnce(t *testing.T) {
	var s Set[int]
	s.Drain(context.Background(), func(int) { t.Fatal("end called on an empty set") })
	if got := s.AppendTo(nil); len(got) != 0 {
		t.Fatalf("AppendTo %v", got)
	}
}
