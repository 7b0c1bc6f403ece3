package connset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// conn is a connection as the front-ends' types are: a pointer to a struct
// that embeds Slot.
type conn struct {
	Slot
	name string
}

func conns(n int) []*conn {
	cs := make([]*conn, n)
	for i := range cs {
		cs[i] = &conn{name: fmt.Sprint("c", i)}
	}
	return cs
}

// TestAddRemoveKeepsExactlyTheMembers: adds, repeated adds, removes in a
// shuffled order and removes of non-members leave exactly the members.
func TestAddRemoveKeepsExactlyTheMembers(t *testing.T) {
	var s Set[*conn]
	cs := conns(3000)
	want := map[*conn]bool{}
	for _, c := range cs {
		s.Add(c)
		s.Add(c) // again: no change
		want[c] = true
	}
	stranger := &conn{name: "never added"}
	s.Remove(stranger)
	rng := rand.New(rand.NewPCG(5, 6))
	for k, i := range rng.Perm(len(cs)) {
		if k%3 == 0 {
			continue // keep a third
		}
		s.Remove(cs[i])
		s.Remove(cs[i]) // again: ignored
		delete(want, cs[i])
	}
	got := s.AppendTo(nil)
	if len(got) != len(want) || s.Len() != len(want) {
		t.Fatalf("%d members (Len %d), want %d", len(got), s.Len(), len(want))
	}
	for _, c := range got {
		if !want[c] {
			t.Fatalf("%s is in the set but was removed", c.name)
		}
		delete(want, c)
	}
	if len(want) != 0 {
		t.Fatalf("%d members missing", len(want))
	}
}

func TestDrainEndsEveryoneAndWaitsForTheLast(t *testing.T) {
	var s Set[*conn]
	cs := conns(6)
	for _, c := range cs[:5] {
		if s.Add(c) {
			t.Fatal("draining before Drain")
		}
	}
	var mu sync.Mutex
	var ended []*conn
	done := make(chan struct{})
	go func() {
		s.Drain(context.Background(), func(c *conn) {
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
	if !s.Add(cs[5]) {
		t.Fatal("Add during drain must report draining so the caller ends it")
	}
}

func TestDrainIsBoundedByContext(t *testing.T) {
	var s Set[*conn]
	s.Add(&conn{name: "stuck"}) // never removed
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.Drain(ctx, func(*conn) {})
	if time.Since(start) > 2*time.Second {
		t.Fatal("Drain ignored its context")
	}
}

func TestDrainOfAnEmptySetReturnsAtOnce(t *testing.T) {
	var s Set[*conn]
	s.Drain(context.Background(), func(*conn) { t.Fatal("end called on an empty set") })
	if got := s.AppendTo(nil); len(got) != 0 {
		t.Fatalf("AppendTo %v", got)
	}
}
