package hub

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

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

// queueSink records whether each message reached it marked Queue.
type queueSink struct {
	mu     sync.Mutex
	queued []bool
}

func (s *queueSink) Deliver(m *transport.Message) {
	s.mu.Lock()
	s.queued = append(s.queued, m.Queued())
	s.mu.Unlock()
}
func (s *queueSink) Terminate() {}

// TestBusyChannelBroadcastsAreQueued: a broadcast right behind another one
// on the same channel is marked Queue (its recipients' writers coalesce);
// one after a quiet spell is not (written inline).
func TestBusyChannelBroadcastsAreQueued(t *testing.T) {
	h := newHub(t)
	s := &queueSink{}
	if _, err := h.Subscribe(context.Background(), "app", "ch", s); err != nil {
		t.Fatal(err)
	}
	p := engine.Publication{Namespace: "app", Channel: "ch", Payload: []byte("x")}
	h.DeliverLocal(p) // first ever: quiet
	h.DeliverLocal(p) // right behind it: busy
	time.Sleep(3 * time.Duration(busyGap))
	h.DeliverLocal(p) // after a quiet spell
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := []bool{false, true, false}; !slices.Equal(s.queued, want) {
		t.Fatalf("queued marks %v, want %v", s.queued, want)
	}
}
