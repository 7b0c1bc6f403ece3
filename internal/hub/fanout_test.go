package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// TestBigFanoutReachesEveryoneOnceAndInOrder: a broadcast big enough to be
// split over several goroutines reaches every subscriber but the excluded
// one exactly once, and successive broadcasts arrive in publish order.
func TestBigFanoutReachesEveryoneOnceAndInOrder(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // split even on one core
	h := newHub(t)
	ctx := context.Background()
	const subs, msgs = 10 * fanoutChunk, 20
	sinks := make([]*sink, subs)
	for i := range sinks {
		sinks[i] = &sink{}
		h.Connect("app", fmt.Sprint("c", i), sinks[i])
		if _, err := h.Subscribe(ctx, "app", "big", sinks[i]); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range msgs {
		p := fmt.Sprint("m", i)
		want = append(want, p)
		h.DeliverLocal(engine.Publication{Namespace: "app", Channel: "big", Payload: []byte(p), ExcludeConn: "c7"})
	}
	for i, s := range sinks {
		got := s.messages()
		if i == 7 {
			if len(got) != 0 {
				t.Fatalf("the excluded connection got %v", got)
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Fatalf("subscriber %d got %v, want %v", i, got, want)
		}
	}
}

// TestChannelIndexAcrossItsThreshold: subscribers come and go across
// indexAbove (the channel builds its index, then drops it), in a shuffled
// order; at every step a repeated subscribe is refused and a broadcast
// reaches exactly the current subscribers.
func TestChannelIndexAcrossItsThreshold(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	const n = 3 * indexAbove
	sinks := make([]*countSink, n)
	for i := range sinks {
		sinks[i] = &countSink{}
	}
	subscribed := map[int]bool{}
	check := func(step string) {
		t.Helper()
		for i := range sinks {
			sinks[i].n.Store(0)
		}
		h.DeliverLocal(engine.Publication{Namespace: "app", Channel: "ch", Payload: []byte("x")})
		for i, s := range sinks {
			want := int64(0)
			if subscribed[i] {
				want = 1
			}
			if got := s.n.Load(); got != want {
				t.Fatalf("%s: subscriber %d got %d deliveries, want %d", step, i, got, want)
			}
		}
		if got := h.LocalSubscribers("app", "ch"); got != len(subscribed) {
			t.Fatalf("%s: %d local subscribers, want %d", step, got, len(subscribed))
		}
	}
	order := rand.New(rand.NewPCG(1, 2)).Perm(n)
	for k, i := range order {
		if _, err := h.Subscribe(ctx, "app", "ch", sinks[i]); err != nil {
			t.Fatal(err)
		}
		subscribed[i] = true
		if _, err := h.Subscribe(ctx, "app", "ch", sinks[i]); err != ErrAlreadySubscribed {
			t.Fatalf("repeated subscribe with %d subscribed: %v", k+1, err)
		}
		if k%97 == 0 {
			check(fmt.Sprint("after ", k+1, " subscribes"))
		}
	}
	check("all subscribed")
	for k, i := range rand.New(rand.NewPCG(3, 4)).Perm(n) {
		if _, was, err := h.Unsubscribe(ctx, "app", "ch", sinks[i]); err != nil || !was {
			t.Fatalf("unsubscribe %d: was=%v err=%v", i, was, err)
		}
		delete(subscribed, i)
		if _, was, _ := h.Unsubscribe(ctx, "app", "ch", sinks[i]); was {
			t.Fatalf("unsubscribe %d twice: the second found it", i)
		}
		if k%89 == 0 && len(subscribed) > 0 {
			check(fmt.Sprint("after ", k+1, " unsubscribes"))
		}
	}
}

type countSink struct{ n atomic.Int64 }

func (s *countSink) Deliver(*transport.Message) { s.n.Add(1) }
func (s *countSink) Terminate()                 {}

// BenchmarkSubscribeUnsubscribe: one more subscriber joins and leaves a
// channel that already has subs (below indexAbove: a search of the slice;
// above: the index map).
func BenchmarkSubscribeUnsubscribe(b *testing.B) {
	for _, subs := range []int{16, indexAbove, 4 * indexAbove} {
		b.Run(fmt.Sprint(subs, "subs"), func(b *testing.B) {
			h := newHub(b)
			ctx := context.Background()
			for range subs {
				_, _ = h.Subscribe(ctx, "app", "ch", &countSink{})
			}
			s := &countSink{}
			b.ResetTimer()
			for range b.N {
				_, _ = h.Subscribe(ctx, "app", "ch", s)
				_, _, _ = h.Unsubscribe(ctx, "app", "ch", s)
			}
		})
	}
}
