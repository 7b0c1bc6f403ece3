package redisengine

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// TestOutageReapsNobody cuts both nodes off from Redis for longer than the
// node timeout, then gives node 0 its path back first: every record is
// stale by then, yet node 0 must not reap node 1, because node 0 has not had
// a whole window of successful heartbeats when node 1 comes back (without
// that rule node 0 would reap it at once).
func TestOutageReapsNobody(t *testing.T) {
	srv := sharedRedis(t)
	locals := recorders(2)
	ms := []*testMetrics{newTestMetrics(), newTestMetrics()}
	proxies := []*freezer{newFreezer(t, srv.Addr()), newFreezer(t, srv.Addr())}
	nodes := startNodes(t, "", locals, func(i int, o *Options) { o.Metrics, o.URL = ms[i], proxies[i].URL() })
	ctx := tctx(t)
	must[int](t)(nodes[0].Occupancy(ctx, "app", "a", 1))
	must[int](t)(nodes[1].Occupancy(ctx, "app", "b", 1))
	ids := []string{nodes[0].NodeID(), nodes[1].NodeID()}

	for _, p := range proxies {
		p.outage()
	}
	for i, m := range ms {
		m.waitFor(t, enginetest.Wait, fmt.Sprintf("node %d sees a heartbeat fail", i), func(m *testMetrics) bool { return m.failed["heartbeat"] > 0 })
	}
	// The outage itself is the condition under test: it must outlast the
	// node timeout.
	time.Sleep(testNodeTimeout + testHeartbeat)
	heartbeats := func(m *testMetrics) int { return m.heartbeats }
	proxies[0].restore()
	base := ms[0].snapshot(heartbeats)
	ms[0].waitFor(t, enginetest.Wait, "node 0 heartbeats again", func(m *testMetrics) bool { return m.heartbeats >= base+3 })
	proxies[1].restore()
	// Wait until both have been healthy for a whole window and a few reap
	// scans more: by then a wrong reap would have happened.
	rounds := int(testNodeTimeout/testHeartbeat) + 5
	for i, m := range ms {
		base := m.snapshot(heartbeats)
		m.waitFor(t, 3*testNodeTimeout+enginetest.Wait, fmt.Sprintf("node %d heartbeats %d times after the outage", i, rounds), func(m *testMetrics) bool { return m.heartbeats >= base+rounds })
	}
	for i, n := range nodes {
		if n.NodeID() != ids[i] || locals[i].FencedCount() != 0 || len(locals[i].Orphans()) != 0 {
			t.Fatalf("node %d: id %s (was %s), fenced %d, orphans %v", i, n.NodeID(), ids[i], locals[i].FencedCount(), orphansIn(locals[i:i+1]))
		}
	}
	for _, ch := range []string{"a", "b"} {
		if st, ok, err := nodes[0].Channel(ctx, "app", ch); err != nil || !ok || st.Subscriptions != 1 {
			t.Fatalf("channel %s after the outage = %v %v %v", ch, st, ok, err)
		}
	}
}

// freezer is a TCP proxy whose existing connections can be frozen: they
// stay open but carry nothing, as through a failed middlebox (no RST).
// New connections pass.
type freezer struct {
	ln     net.Listener
	target string
	down   atomic.Bool // new connections are dropped at once
	mu     sync.Mutex
	frozen []chan struct{} // closed to freeze one connection
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	go f.accept()
	// Closing the proxy's own sockets: an error there says nothing about
	// the engine under test.
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			_ = c.Close()
		}
		f.mu.Unlock()
	})
	return f
}

func (f *freezer) URL() string { return "redis://" + f.ln.Addr().String() }

func (f *freezer) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if f.down.Load() {
			_ = c.Close() // refusing the client is the point
			continue
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			_ = c.Close() // no upstream: the client sees a dropped connection
			continue
		}
		stop := make(chan struct{})
		f.mu.Lock()
		f.frozen = append(f.frozen, stop)
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		go pipe(c, up, stop)
		go pipe(up, c, stop)
	}
}

// pipe copies until stop is closed, then swallows everything.
func pipe(dst, src net.Conn, stop chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			_ = dst.Close() // pass the end on; the other direction may have closed it already
			return
		}
		select {
		case <-stop:
			continue
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			_ = src.Close() // pass the end on; the other direction may have closed it already
			return
		}
	}
}

// freezeAll freezes every connection open now.
func (f *freezer) freezeAll() {
	f.mu.Lock()
	for _, s := range f.frozen {
		close(s)
	}
	f.frozen = nil
	f.mu.Unlock()
}

// outage freezes every open connection and drops new ones.
func (f *freezer) outage() {
	f.down.Store(true)
	f.freezeAll()
}

// restore lets new connections through again.
func (f *freezer) restore() { f.down.Store(false) }

// TestWedgedPubSubIsReplaced freezes a node's connections to Redis
// without closing them: the liveness probe on its idle pub/sub connection
// must notice, reconnect and resubscribe, so publications reach it again
// (centrifugo#1189: delivery silently lost while health stayed green).
func TestWedgedPubSubIsReplaced(t *testing.T) {
	srv := sharedRedis(t)
	proxy := newFreezer(t, srv.Addr())
	locals := recorders(2)
	nodes := startNodes(t, srv.URL(), locals, func(i int, o *Options) {
		o.NodeTimeout = 10 * time.Second // this test is about delivery, not reaping
		if i == 1 {
			o.URL = proxy.URL()
		}
	})
	ctx := tctx(t)
	must[struct{}](t)(struct{}{}, nodes[1].Interest(ctx, "app", "news", true))
	must[struct{}](t)(struct{}{}, nodes[0].Publish(ctx, engine.Publication{Namespace: "app", Channel: "news", Payload: []byte("before")}))
	locals[1].WaitFor(t, enginetest.Wait, "delivery before the freeze", func() bool { return len(locals[1].Deliveries()) == 1 })

	proxy.freezeAll()
	deadline := time.Now().Add(enginetest.Wait)
	for k := 0; len(locals[1].Deliveries()) < 2; k++ {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery within %v of the freeze", enginetest.Wait)
		}
		must[struct{}](t)(struct{}{}, nodes[0].Publish(context.Background(), engine.Publication{Namespace: "app", Channel: "news", Payload: fmt.Appendf(nil, "after-%d", k)}))
		time.Sleep(50 * time.Millisecond) // retrying a lossy send, not waiting for an event
	}
}

// TestFailedRemovalIsRetried: a presence removal and an offline that fail
// while Redis is unreachable are retried once it answers again, and the
// transitions they decide reach the hub as orphans, so no ghost member or
// user stays behind.
func TestFailedRemovalIsRetried(t *testing.T) {
	srv := sharedRedis(t)
	proxy := newFreezer(t, srv.Addr())
	locals := recorders(2)
	nodes := startNodes(t, srv.URL(), locals, func(i int, o *Options) {
		o.NodeTimeout = 10 * time.Second // this test is about retries, not reaping
		if i == 1 {
			o.URL = proxy.URL()
		}
	})
	ctx := tctx(t)
	cut := nodes[1]
	must[bool](t)(cut.PresenceAdd(ctx, "app", "presence-p", "c1", engine.Member{UserID: "ann"}, 0))
	must[bool](t)(cut.UserOnline(ctx, "app", "ann", "c1"))

	proxy.outage()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, errP := cut.PresenceRemove(short, "app", "presence-p", "c1", "ann")
	_, errU := cut.UserOffline(short, "app", "ann", "c1")
	cancel()
	if errP == nil || errU == nil {
		t.Fatalf("removals through a dead connection succeeded: %v %v", errP, errU)
	}
	proxy.restore()
	locals[1].WaitFor(t, enginetest.Wait, "the retried removals' transitions", func() bool { return len(locals[1].Orphans()) >= 2 })
	if got, want := orphansIn(locals[1:]), []string{"2/presence-p/ann", "3//ann"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
	if ms := must[[]engine.Member](t)(nodes[0].PresenceMembers(ctx, "app", "presence-p")); len(ms) != 0 {
		t.Fatalf("ghost members %v", ms)
	}
	if on := must[[]string](t)(nodes[0].OnlineUsers(ctx, "app", []string{"ann"})); len(on) != 0 {
		t.Fatalf("ghost online users %v", on)
	}
	// The connection is gone: removing it again is a no-op.
	if last := must[bool](t)(cut.PresenceRemove(ctx, "app", "presence-p", "c1", "ann")); last {
		t.Fatal("a second removal reported member_removed")
	}
}
