package hub

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
)

// countingEngine counts the store writes a cluster engine would make.
type countingEngine struct {
	*memory.Engine
	occupancy atomic.Int64
}

func (c *countingEngine) Occupancy(ctx context.Context, ns, ch string, d int) (int, error) {
	c.occupancy.Add(1)
	return c.Engine.Occupancy(ctx, ns, ch, d)
}

func TestCountLocallyWritesNoOccupancy(t *testing.T) {
	eng := &countingEngine{Engine: memory.New()}
	h := New(eng, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.CountLocally("damon")
	a, b := &sink{}, &sink{}
	h.Connect("damon", "a", a)
	h.Connect("damon", "b", b)
	if n, _ := h.Subscribe(ctx, "damon", "global", a); n != 1 {
		t.Fatalf("first local subscribe = %d", n)
	}
	if n, _ := h.Subscribe(ctx, "damon", "global", b); n != 2 {
		t.Fatalf("second local subscribe = %d", n)
	}
	_ = h.Publish(ctx, engine.Publication{Namespace: "damon", Channel: "global", Payload: []byte("x")})
	if len(a.messages()) != 1 || len(b.messages()) != 1 {
		t.Fatal("a locally counted namespace still delivers")
	}
	if n, ok, _ := h.Unsubscribe(ctx, "damon", "global", a); n != 1 || !ok {
		t.Fatalf("unsubscribe = %d %v", n, ok)
	}
	if got := eng.occupancy.Load(); got != 0 {
		t.Fatalf("%d occupancy writes for a locally counted namespace", got)
	}
	// Other namespaces still count cluster-wide.
	h.Connect("app", "a", a)
	if _, err := h.Subscribe(ctx, "app", "ch", a); err != nil {
		t.Fatal(err)
	}
	if got := eng.occupancy.Load(); got != 1 {
		t.Fatalf("app namespace made %d occupancy writes, want 1", got)
	}
}

// kickSink records claim kicks and reconnect requests.
type kickSink struct {
	sink
	kicked     atomic.Value
	reconnects atomic.Int32
}

func (k *kickSink) Kick(claim string) { k.kicked.Store(claim) }
func (k *kickSink) Reconnect()        { k.reconnects.Add(1) }

type orphanOwner struct{ got []engine.Orphan }

func (o *orphanOwner) Orphaned(x engine.Orphan) { o.got = append(o.got, x) }

func TestClusterCallbacksReachTheirTargets(t *testing.T) {
	h := newHub(t)
	ctx := context.Background()
	k, plain := &kickSink{}, &sink{}
	h.Connect("dcl", "1", k)
	h.Connect("dcl", "2", plain)

	// A claim taken by a later connection kicks the earlier one.
	if _, err := h.Claim(ctx, "dcl", "0xabc", "1"); err != nil {
		t.Fatal(err)
	}
	if prev, _ := h.Claim(ctx, "dcl", "0xabc", "3"); prev != "1" {
		t.Fatalf("prev owner %q", prev)
	}
	if got, _ := k.kicked.Load().(string); got != "0xabc" {
		t.Fatalf("kick reached %q", got)
	}
	if h.KickLocal("dcl", "nobody", "x") {
		t.Fatal("kicked a connection that is not here")
	}
	if !h.KickLocal("dcl", "2", "x") || !plain.terminated.Load() {
		t.Fatal("a subscriber without Kick is terminated")
	}

	o := &orphanOwner{}
	h.Own("app", o)
	h.Orphaned(engine.Orphan{Kind: engine.OrphanVacated, Namespace: "app", Channel: "c"})
	h.Orphaned(engine.Orphan{Kind: engine.OrphanVacated, Namespace: "unowned", Channel: "c"})
	if len(o.got) != 1 || o.got[0].Channel != "c" {
		t.Fatalf("owner got %+v", o.got)
	}

	h.Fenced()
	if k.reconnects.Load() != 1 {
		t.Fatal("fencing did not ask the connection to reconnect")
	}
}

// interestEngine records the last Interest per channel, slowly, as a
// network round trip would be.
type interestEngine struct {
	*memory.Engine
	mu sync.Mutex
	on map[string]bool
}

func (e *interestEngine) Interest(_ context.Context, ns, ch string, on bool) error {
	runtime.Gosched()
	time.Sleep(50 * time.Microsecond)
	e.mu.Lock()
	e.on[ns+"/"+ch] = on
	e.mu.Unlock()
	return nil
}

// A channel's last unsubscribe racing the next first subscribe must leave
// the engine interested: the node has a subscriber.
func TestInterestFollowsTheLastChange(t *testing.T) {
	eng := &interestEngine{Engine: memory.New(), on: map[string]bool{}}
	h := New(eng, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for round := range 300 {
		a, b := &sink{}, &sink{}
		ch := fmt.Sprint("c", round)
		if _, err := h.Subscribe(ctx, "app", ch, a); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { _, _, _ = h.Unsubscribe(ctx, "app", ch, a) })
		wg.Go(func() { _, _ = h.Subscribe(ctx, "app", ch, b) })
		wg.Wait()
		eng.mu.Lock()
		on := eng.on["app/"+ch]
		eng.mu.Unlock()
		if want := h.LocalSubscribers("app", ch) > 0; on != want {
			t.Fatalf("round %d: engine interest %v with %d local subscribers", round, on, h.LocalSubscribers("app", ch))
		}
	}
}
