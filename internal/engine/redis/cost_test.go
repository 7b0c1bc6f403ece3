package redisengine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// TestStoreWritesOnlyAtNodeTransitions: five tabs of one user on one node
// are one presence write and one signed-in write each way; only the
// node's first and last connection reach Redis.
func TestStoreWritesOnlyAtNodeTransitions(t *testing.T) {
	m := newTestMetrics()
	nodes := startNodes(t, sharedRedis(t).URL(), recorders(1), func(_ int, o *Options) { o.Metrics = m })
	e, ctx := nodes[0], tctx(t)
	ops := func(op string) int { return m.snapshot(func(m *testMetrics) int { return m.ops[op] }) }
	for tab := range 5 {
		conn := fmt.Sprintf("c%d", tab)
		first := must[bool](t)(e.PresenceAdd(ctx, "app", "presence-x", conn, engine.Member{UserID: "ann"}, 0))
		online := must[bool](t)(e.UserOnline(ctx, "app", "ann", conn))
		if first != (tab == 0) || online != (tab == 0) {
			t.Fatalf("tab %d: member_added %v, online %v", tab, first, online)
		}
	}
	var lasts []int
	for tab := range 5 {
		conn := fmt.Sprintf("c%d", tab)
		last := must[bool](t)(e.PresenceRemove(ctx, "app", "presence-x", conn, "ann"))
		offline := must[bool](t)(e.UserOffline(ctx, "app", "ann", conn))
		if last != offline {
			t.Fatalf("tab %d: member_removed %v but offline %v", tab, last, offline)
		}
		if last {
			lasts = append(lasts, tab)
		}
	}
	if !slices.Equal(lasts, []int{4}) {
		t.Fatalf("member_removed at tabs %v, want [4]", lasts)
	}
	for _, op := range []string{"presence_add", "presence_remove", "user_online", "user_offline"} {
		if n := ops(op); n != 1 {
			t.Fatalf("%s ran %d times for five tabs, want 1", op, n)
		}
	}
}

// TestBrokerMessagesPerPublish: a PUBLISH reaches exactly the nodes with
// interest (one pub/sub connection each), whatever the cluster size.
func TestBrokerMessagesPerPublish(t *testing.T) {
	m := newTestMetrics()
	locals := recorders(3)
	nodes := startNodes(t, sharedRedis(t).URL(), locals, func(i int, o *Options) {
		if i == 0 {
			o.Metrics = m
		}
	})
	ctx := tctx(t)
	for _, n := range nodes[1:] {
		must[struct{}](t)(struct{}{}, n.Interest(ctx, "app", "news", true))
	}
	must[struct{}](t)(struct{}{}, nodes[0].Publish(ctx, engine.Publication{Namespace: "app", Channel: "news", Payload: []byte("x")}))
	must[struct{}](t)(struct{}{}, nodes[0].Publish(ctx, engine.Publication{Namespace: "app", Channel: "quiet", Payload: []byte("x")}))
	got := m.snapshot(func(m *testMetrics) int { return len(m.published) })
	if got != 2 || m.published[0] != 2 || m.published[1] != 0 {
		t.Fatalf("receivers per publish %v, want [2 0]", m.published)
	}
	enginetest.WaitForAny(t, locals[1:], enginetest.Wait, "both interested nodes deliver", func() bool {
		return len(locals[1].Deliveries()) == 1 && len(locals[2].Deliveries()) == 1
	})
}

// chanLocal signals every delivery on a channel (for the benchmark).
type chanLocal struct {
	*enginetest.Recorder
	got chan struct{}
}

func (c *chanLocal) DeliverLocal(engine.Publication) { c.got <- struct{}{} }

// BenchmarkPublishAcrossNodes is one publication from node 0 until node 1
// delivered it, through one local redis-server: the engine's added
// latency per cross-node hop (encode, PUBLISH, pub/sub, decode).
//
//	go test -run '^$' -bench PublishAcrossNodes -benchtime 2000x ./internal/engine/redis/
func BenchmarkPublishAcrossNodes(b *testing.B) {
	srv := benchRedis(b)
	recv := &chanLocal{Recorder: enginetest.NewRecorder(), got: make(chan struct{}, 1)}
	send := enginetest.NewRecorder()
	prefix := testPrefix()
	var es []*Engine
	for i, l := range []engine.Local{send, recv} {
		e := New(Options{URL: srv.URL(), NodeName: fmt.Sprintf("b%d", i), Prefix: prefix, Heartbeat: time.Second, NodeTimeout: 10 * time.Second})
		if err := e.Start(context.Background(), l); err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := e.Close(); err != nil {
				b.Error(err)
			}
		}()
		es = append(es, e)
	}
	ctx := context.Background()
	if err := es[1].Interest(ctx, "app", "news", true); err != nil {
		b.Fatal(err)
	}
	p := engine.Publication{Namespace: "app", Channel: "news", Payload: make([]byte, 200)}
	b.ReportAllocs()
	for b.Loop() {
		if err := es[0].Publish(ctx, p); err != nil {
			b.Fatal(err)
		}
		<-recv.got
	}
}

// BenchmarkStoreOps is the round trip of the writes a subscription costs
// against one local redis-server: occupancy +1/-1 (every subscribe and
// unsubscribe) and presence add/remove (a node's first and last
// connection of a member).
//
//	go test -run '^$' -bench StoreOps -benchtime 2000x ./internal/engine/redis/
func BenchmarkStoreOps(b *testing.B) {
	srv := benchRedis(b)
	e := New(Options{URL: srv.URL(), NodeName: "b", Prefix: testPrefix()})
	if err := e.Start(context.Background(), enginetest.NewRecorder()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := e.Close(); err != nil {
			b.Error(err)
		}
	}()
	ctx := context.Background()
	b.Run("occupancy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.Occupancy(ctx, "app", "room", 1); err != nil {
				b.Fatal(err)
			}
			if _, err := e.Occupancy(ctx, "app", "room", -1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("presence", func(b *testing.B) {
		b.ReportAllocs()
		m := engine.Member{UserID: "ann", Info: []byte(`{"name":"Ann"}`)}
		for b.Loop() {
			if _, err := e.PresenceAdd(ctx, "app", "presence-room", "c1", m, 100); err != nil {
				b.Fatal(err)
			}
			if _, err := e.PresenceRemove(ctx, "app", "presence-room", "c1", "ann"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestConcurrentTabsTransitionOnce: many connections of one user join and
// leave at once on every node (a reconnect storm); the per-node counts and
// the scripts still give exactly one member_added/online and one
// member_removed/offline.
func TestConcurrentTabsTransitionOnce(t *testing.T) {
	nodes := startNodes(t, sharedRedis(t).URL(), recorders(3))
	ctx := tctx(t)
	const tabs = 20
	var mu sync.Mutex
	counts := map[string]int{}
	note := func(what string, ok bool, err error) {
		if err != nil {
			t.Error(err)
		}
		if ok {
			mu.Lock()
			counts[what]++
			mu.Unlock()
		}
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for i, n := range nodes {
			for tab := range tabs {
				conn := fmt.Sprintf("r%d-n%d-t%d", round, i, tab)
				wg.Go(func() {
					ok, err := n.PresenceAdd(ctx, "app", "presence-x", conn, engine.Member{UserID: "ann"}, 0)
					note("added", ok, err)
					ok, err = n.UserOnline(ctx, "app", "ann", conn)
					note("online", ok, err)
				})
			}
		}
		wg.Wait()
		for i, n := range nodes {
			for tab := range tabs {
				conn := fmt.Sprintf("r%d-n%d-t%d", round, i, tab)
				wg.Go(func() {
					ok, err := n.PresenceRemove(ctx, "app", "presence-x", conn, "ann")
					note("removed", ok, err)
					ok, err = n.UserOffline(ctx, "app", "ann", conn)
					note("offline", ok, err)
				})
			}
		}
		wg.Wait()
	}
	for _, what := range []string{"added", "online", "removed", "offline"} {
		if counts[what] != 3 {
			t.Fatalf("3 rounds gave %v, want 3 of each", counts)
		}
	}
}
