package natsengine

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// countingObserver counts what the engine reports.
type countingObserver struct {
	mu        sync.Mutex
	publishes int
	ops       map[string]int
}

func (c *countingObserver) BrokerPublish() { c.mu.Lock(); c.publishes++; c.mu.Unlock() }
func (c *countingObserver) StoreOp(op string, _ bool, _ error) {
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
}
func (c *countingObserver) Reaped(int) {}
func (c *countingObserver) Nodes(int)  {}

func (c *countingObserver) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for k, v := range c.ops {
		m[k] = v
	}
	return c.publishes, m
}

// A node's second subscriber to a channel, presence connection or signed-in
// connection touches no store key (only 0<->1 crossings write), and a
// publication is one broker message.
func TestStoreOpsOnlyOnCrossings(t *testing.T) {
	url := externalServer(t)
	obs := &countingObserver{ops: map[string]int{}}
	p, err := startCluster(1, func(int) Options {
		return Options{NodeName: "solo", URLs: []string{url}, Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger(), Observer: obs}
	})
	if err != nil {
		t.Fatal(err)
	}
	p.cluster(t, []*enginetest.Recorder{enginetest.NewRecorder()})
	e := p.engines[0]
	// Stop the heartbeat's own store traffic from muddying the counts.
	e.pause.Store(true)
	for e.busy.Load() { // a pass started before the pause
		runtime.Gosched()
	}
	ctx := context.Background()
	if _, err := e.Occupancy(ctx, "o", "ch", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PresenceAdd(ctx, "o", "presence-x", "c1", engine.Member{UserID: "ann"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.UserOnline(ctx, "o", "ann", "c1"); err != nil {
		t.Fatal(err)
	}
	_, before := obs.snapshot()
	for i := range 3 {
		conn := fmt.Sprintf("c%d", i+2)
		if n, err := e.Occupancy(ctx, "o", "ch", 1); err != nil || n != i+2 {
			t.Fatalf("occupancy %d %v", n, err)
		}
		if first, err := e.PresenceAdd(ctx, "o", "presence-x", conn, engine.Member{UserID: "ann"}, 0); err != nil || first {
			t.Fatalf("presence %v %v", first, err)
		}
		if first, err := e.UserOnline(ctx, "o", "ann", conn); err != nil || first {
			t.Fatalf("user %v %v", first, err)
		}
	}
	if _, after := obs.snapshot(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("store ops for connections past the first: %v -> %v", before, after)
	}
	pubs, _ := obs.snapshot()
	if err := e.Publish(ctx, engine.Publication{Namespace: "o", Channel: "ch", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if after, _ := obs.snapshot(); after != pubs+1 {
		t.Fatalf("one publication cost %d broker messages", after-pubs)
	}
}

// One embedded node without routes is a whole cluster: standalone
// JetStream, one replica. So is one whose route list names no other node,
// as the default configuration's (a listen address, no routes): before,
// nats-server refused clustered JetStream without a route and the node
// never became ready.
func TestSingleEmbeddedNode(t *testing.T) {
	for _, c := range []struct {
		name   string
		listen bool
		routes func(listen string) []string
	}{
		{"no listen", false, func(string) []string { return nil }},
		{"listen, no routes", true, func(string) []string { return nil }},
		{"listen, routes naming itself", true, func(l string) []string { return []string{"nats-route://" + l} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			listen := ""
			if c.listen {
				addrs, err := freeAddrs(1)
				if err != nil {
					t.Fatal(err)
				}
				listen = addrs[0]
			}
			singleEmbeddedNode(t, Options{NodeName: "alone", Embedded: true, Listen: listen, Routes: c.routes(listen),
				StoreDir: storeDir(t), Logger: quietLogger()})
			if listen != "" {
				if conn, err := net.Dial("tcp", listen); err == nil {
					_ = conn.Close()
					t.Errorf("a node without peers listens for routes on %s", listen)
				}
			}
		})
	}
}

func singleEmbeddedNode(t *testing.T, o Options) {
	t.Helper()
	p, err := startCluster(1, func(int) Options { return o })
	if err != nil {
		t.Fatal(err)
	}
	l := enginetest.NewRecorder()
	p.cluster(t, []*enginetest.Recorder{l})
	e := p.engines[0]
	ctx := context.Background()
	if err := e.Interest(ctx, "a", "ch", true); err != nil {
		t.Fatal(err)
	}
	if err := e.Publish(ctx, engine.Publication{Namespace: "a", Channel: "ch", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if got := l.Deliveries(); len(got) != 1 || string(got[0].Payload) != "x" {
		t.Fatalf("deliveries %v", got)
	}
	if n, err := e.Occupancy(ctx, "a", "ch", 1); err != nil || n != 1 {
		t.Fatalf("occupancy %d %v", n, err)
	}
}
