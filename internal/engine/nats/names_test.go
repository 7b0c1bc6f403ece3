package natsengine

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// Two clusters on one NATS, one unnamed and one with cluster.name, keep
// apart: both start (their streams' subjects do not overlap), publications
// reach only their own cluster's nodes, and presence is per cluster.
func TestNamedClustersShareOneNATS(t *testing.T) {
	t.Parallel()
	url := externalServer(t)
	start := func(name string) (*pending, []*enginetest.Recorder) {
		p, err := startCluster(2, func(i int) Options {
			return Options{Name: name, NodeName: fmt.Sprintf("%s%d", name, i), URLs: []string{url},
				Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger()}
		})
		if err != nil {
			t.Fatalf("cluster %q: %v", name, err)
		}
		locals := []*enginetest.Recorder{enginetest.NewRecorder(), enginetest.NewRecorder()}
		p.cluster(t, locals)
		return p, locals
	}
	a, aLocals := start("")
	b, bLocals := start("staging")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, e := range []*Engine{a.engines[1], b.engines[1]} {
		if err := e.Interest(ctx, "app", "ch", true); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(e *Engine, body string) {
		t.Helper()
		if err := e.Publish(ctx, engine.Publication{Namespace: "app", Channel: "ch", Payload: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	bodies := func(r *enginetest.Recorder) []string {
		var out []string
		for _, p := range r.Deliveries() {
			out = append(out, string(p.Payload))
		}
		return out
	}
	publish(a.engines[0], "a1")
	publish(b.engines[0], "b1")
	publish(a.engines[0], "a2")
	publish(b.engines[0], "b2")
	aLocals[1].WaitFor(t, 10*time.Second, "a1, a2 on the unnamed cluster", func() bool { return len(bodies(aLocals[1])) >= 2 })
	bLocals[1].WaitFor(t, 10*time.Second, "b1, b2 on the named cluster", func() bool { return len(bodies(bLocals[1])) >= 2 })
	if got := bodies(aLocals[1]); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("unnamed cluster's node got %v, want [a1 a2]", got)
	}
	if got := bodies(bLocals[1]); !slices.Equal(got, []string{"b1", "b2"}) {
		t.Fatalf("named cluster's node got %v, want [b1 b2]", got)
	}

	if _, err := a.engines[0].PresenceAdd(ctx, "app", "presence-x", "conn-1", engine.Member{UserID: "u1"}, 0); err != nil {
		t.Fatal(err)
	}
	if ms, err := a.engines[1].PresenceMembers(ctx, "app", "presence-x"); err != nil || len(ms) != 1 {
		t.Fatalf("unnamed cluster's other node: members %v, %v; want u1", ms, err)
	}
	if ms, err := b.engines[1].PresenceMembers(ctx, "app", "presence-x"); err != nil || len(ms) != 0 {
		t.Fatalf("named cluster: members %v, %v; want none", ms, err)
	}
}

func TestNamesOfANamedCluster(t *testing.T) {
	n := newNames("prod")
	if n.dataSubject("app", "ch") != "sb-prod.m.YXBw.Y2g" || n.stateStream != "KV_switchboard_prod" ||
		n.kvPrefix != "$KV.switchboard_prod." || n.cacheStream != "SB_CACHE_prod" || n.cacheSubject("a", "b") != "sbc-prod.YQ.Yg" {
		t.Fatalf("names: %+v", n)
	}
	d := newNames("")
	if d.dataSubject("app", "ch") != "sb.m.YXBw.Y2g" || d.stateStream != "KV_switchboard" || d.cachePrefix != "sbc." || d.ctl != "sb.ctl" {
		t.Fatalf("default names changed: %+v", d)
	}
}
