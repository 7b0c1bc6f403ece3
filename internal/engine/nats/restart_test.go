package natsengine

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// An external NATS server restarts and comes back without the engine's
// streams (they live in memory): every node creates them again, fences,
// rejoins under a new id, and the store and publications work again.
// Before, heartbeats failed forever and every store call answered
// "stream not found".
func TestExternalServerRestartLosesStreams(t *testing.T) {
	dir := storeDir(t)
	start := func(port int) *server.Server {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
		return ns
	}
	ns := start(server.RANDOM_PORT)
	url := ns.ClientURL()
	port := ns.Addr().(*net.TCPAddr).Port
	locals := []*enginetest.Recorder{enginetest.NewRecorder(), enginetest.NewRecorder()}
	p, err := startCluster(2, func(i int) Options {
		return Options{NodeName: fmt.Sprintf("r%d", i), URLs: []string{url}, Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger()}
	})
	if err != nil {
		ns.Shutdown()
		t.Fatal(err)
	}
	p.cluster(t, locals)
	ctx := context.Background()
	for _, e := range p.engines {
		if err := e.Interest(ctx, "app", "news", true); err != nil {
			t.Fatal(err)
		}
	}
	oldIDs := []string{p.engines[0].NodeID(), p.engines[1].NodeID()}

	ns.Shutdown()
	ns.WaitForShutdown()
	ns = start(port)
	t.Cleanup(ns.Shutdown)

	enginetest.WaitForAny(t, locals, testNodeTimeout+enginetest.Wait, "both nodes fenced", func() bool {
		return locals[0].FencedCount() >= 1 && locals[1].FencedCount() >= 1
	})
	for i, e := range p.engines {
		if e.NodeID() == oldIDs[i] {
			t.Fatalf("node %d kept its id after the server lost the streams", i)
		}
	}
	if n, err := p.engines[0].Occupancy(ctx, "app", "ch", 1); err != nil || n != 1 {
		t.Fatalf("occupancy after the restart: %d %v", n, err)
	}
	if first, err := p.engines[1].PresenceAdd(ctx, "app", "presence-p", "c1", engine.Member{UserID: "ann"}, 0); err != nil || !first {
		t.Fatalf("presence after the restart: %v %v", first, err)
	}
	// Core NATS resubscribed on reconnect: node 0's publication reaches
	// node 1 (a few tries: at most once while the connection comes back).
	deadline := time.Now().Add(enginetest.Wait)
	for k := 0; len(locals[1].Deliveries()) == 0; k++ {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the server came back")
		}
		_ = p.engines[0].Publish(ctx, engine.Publication{Namespace: "app", Channel: "news", Payload: fmt.Appendf(nil, "p%d", k)})
		time.Sleep(50 * time.Millisecond) // retrying a lossy send, not waiting for an event
	}
}
