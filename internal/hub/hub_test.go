package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

type sink struct {
	mu         sync.Mutex
	got        []string
	terminated atomic.Bool
}

func (s *sink) Deliver(m *transport.Message) {
	s.mu.Lock()
	s.got = append(s.got, string(m.Payload))
	s.mu.Unlock()
}
func (s *sink) Terminate() { s.terminated.Store(true) }
func (s *sink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func newHub(t testing.TB) *Hub {
	h := New(memory.New(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestFanoutExcludesOneAndIsolatesNamespaces(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	a, b, c, other := &sink{}, &sink{}, &sink{}, &sink{}
	for i, s := range []*sink{a, b, c} {
		h.Connect("app1", fmt.Sprint(i), s)
		if _, err := h.Subscribe(ctx, "app1", "room", s); err != nil {
			t.Fatal(err)
		}
	}
	h.Connect("app2", "0", other)
	_, _ = h.Subscribe(ctx, "app2", "room", other)

	_ = h.Publish(ctx, engine.Publication{Namespace: "app1", Channel: "room", Payload: []byte("hi"), ExcludeConn: "1"})
	if got := a.messages(); len(got) != 1 || got[0] != "hi" {
		t.Fatalf("a got %q", got)
	}
	if got := b.messages(); len(got) != 0 {
		t.Fatalf("excluded b got %q", got)
	}
	if got := other.messages(); len(got) != 0 {
		t.Fatalf("other app got %q", got)
	}
}

func TestOccupancyCountsAndDuplicates(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	a, b := &sink{}, &sink{}
	if n, _ := h.Subscribe(ctx, "app", "ch", a); n != 1 {
		t.Fatalf("first subscribe count %d", n)
	}
	if _, err := h.Subscribe(ctx, "app", "ch", a); !errors.Is(err, ErrAlreadySubscribed) {
		t.Fatalf("duplicate subscribe: %v", err)
	}
	if n, _ := h.Subscribe(ctx, "app", "ch", b); n != 2 {
		t.Fatalf("second subscribe count %d", n)
	}
	if n, ok, _ := h.Unsubscribe(ctx, "app", "ch", a); n != 1 || !ok {
		t.Fatalf("unsubscribe: %d %v", n, ok)
	}
	if _, ok, _ := h.Unsubscribe(ctx, "app", "ch", a); ok {
		t.Fatal("second unsubscribe reported a removal")
	}
	if n, _, _ := h.Unsubscribe(ctx, "app", "ch", b); n != 0 {
		t.Fatalf("vacated count %d", n)
	}
	chs, _ := h.Channels(ctx, "app", "")
	if len(chs) != 0 {
		t.Fatalf("vacated channel still listed: %v", chs)
	}
	_ = h.Publish(ctx, engine.Publication{Namespace: "app", Channel: "ch", Payload: []byte("x")})
	if len(a.messages())+len(b.messages()) != 0 {
		t.Fatal("delivered after unsubscribe")
	}
}

func TestPresenceOneMemberPerUser(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	first, _ := h.PresenceJoin(ctx, "app", "presence-x", "c1", engine.Member{UserID: "7", Info: []byte(`{"n":1}`)})
	second, _ := h.PresenceJoin(ctx, "app", "presence-x", "c2", engine.Member{UserID: "7", Info: []byte(`{"n":1}`)})
	if !first || second {
		t.Fatalf("first=%v second=%v", first, second)
	}
	if n, _ := h.PresenceCount(ctx, "app", "presence-x"); n != 1 {
		t.Fatalf("count %d", n)
	}
	if last, _ := h.PresenceLeave(ctx, "app", "presence-x", "c1", "7"); last {
		t.Fatal("removed while a second connection remains")
	}
	if last, _ := h.PresenceLeave(ctx, "app", "presence-x", "c2", "7"); !last {
		t.Fatal("not removed after the last connection")
	}
}

func TestTerminateUser(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	a, b, c := &sink{}, &sink{}, &sink{}
	_, _ = h.UserOnline(ctx, "app", "u1", "a", a)
	_, _ = h.UserOnline(ctx, "app", "u1", "b", b)
	_, _ = h.UserOnline(ctx, "app", "u2", "c", c)
	if err := h.TerminateUser(ctx, "app", "u1"); err != nil {
		t.Fatal(err)
	}
	if !a.terminated.Load() || !b.terminated.Load() || c.terminated.Load() {
		t.Fatalf("terminated a=%v b=%v c=%v", a.terminated.Load(), b.terminated.Load(), c.terminated.Load())
	}
}

func TestConcurrentSubscribePublish(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s := &sink{}
				name := fmt.Sprint("ch", i%5)
				_, _ = h.Subscribe(ctx, "app", name, s)
				_ = h.Publish(ctx, engine.Publication{Namespace: "app", Channel: name, Payload: []byte("x")})
				_, _, _ = h.Unsubscribe(ctx, "app", name, s)
			}
		}()
	}
	wg.Wait()
	if chs, _ := h.Channels(ctx, "app", ""); len(chs) != 0 {
		t.Fatalf("channels left: %v", chs)
	}
}

type countingSink struct{ n atomic.Int64 }

func (c *countingSink) Deliver(*transport.Message) { c.n.Add(1) }
func (c *countingSink) Terminate()                 {}

// BenchmarkDeliverLocal is the hub's share of a broadcast: look up the
// channel once, build one Message, hand it to each subscriber.
func BenchmarkDeliverLocal(b *testing.B) {
	for _, subs := range []int{100, 2000} {
		b.Run(fmt.Sprint(subs, "subs"), func(b *testing.B) {
			h := newHub(b)
			ctx := context.Background()
			for i := 0; i < subs; i++ {
				s := &countingSink{}
				h.Connect("app", fmt.Sprint(i), s)
				_, _ = h.Subscribe(ctx, "app", "ch", s)
			}
			p := engine.Publication{Namespace: "app", Channel: "ch", Payload: make([]byte, 100), ExcludeConn: "7"}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.DeliverLocal(p)
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			d := float64(b.N) * float64(subs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/d, "ns/delivery")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/d, "allocs/delivery")
		})
	}
}

func TestChannelLookupIsExact(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	s1, s2 := &sink{}, &sink{}
	_, _ = h.Subscribe(ctx, "app", "presence-room2", s1)
	_, _ = h.Subscribe(ctx, "app", "presence-room2", s2)
	_, _ = h.PresenceJoin(ctx, "app", "presence-room2", "c1", engine.Member{UserID: "u"})
	if _, ok, _ := h.Channel(ctx, "app", "presence-room"); ok {
		t.Fatal("a channel whose name is only a prefix of an occupied one reported occupied")
	}
	st, ok, _ := h.Channel(ctx, "app", "presence-room2")
	if !ok || st.Subscriptions != 2 || st.Users != 1 {
		t.Fatalf("stats %+v occupied %v", st, ok)
	}
	if _, ok, _ := h.Channel(ctx, "other-app", "presence-room2"); ok {
		t.Fatal("another app's channel reported occupied")
	}
}
