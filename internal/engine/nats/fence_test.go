package natsengine

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

// pair starts two engines on one external server.
func pair(t *testing.T) (*pending, []*enginetest.Recorder) {
	t.Helper()
	url := externalServer(t)
	locals := []*enginetest.Recorder{enginetest.NewRecorder(), enginetest.NewRecorder()}
	p, err := startCluster(2, func(i int) Options {
		return Options{NodeName: fmt.Sprintf("n%d", i), URLs: []string{url}, Heartbeat: testHeartbeat, NodeTimeout: testNodeTimeout, Logger: quietLogger()}
	})
	if err != nil {
		t.Fatal(err)
	}
	p.cluster(t, locals)
	return p, locals
}

// holdState gives e a channel, a presence member and a user that no other
// node shares, so their removal is three transitions.
func holdState(t *testing.T, e *Engine, ns string) {
	t.Helper()
	ctx := context.Background()
	if n, err := e.Occupancy(ctx, ns, "ch", 1); err != nil || n != 1 {
		t.Fatalf("occupancy %d %v", n, err)
	}
	if first, err := e.PresenceAdd(ctx, ns, "presence-p", "c1", engine.Member{UserID: "ann"}, 0); err != nil || !first {
		t.Fatalf("presence %v %v", first, err)
	}
	if first, err := e.UserOnline(ctx, ns, "bob", "c2"); err != nil || !first {
		t.Fatalf("user %v %v", first, err)
	}
}

func orphanKinds(os []engine.Orphan) string {
	var out []string
	for _, o := range os {
		out = append(out, fmt.Sprintf("%d/%s/%s", o.Kind, o.Channel, o.Member.UserID))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

const wantOrphans = "[1/ch/ 2/presence-p/ann 3//bob]"

// A node whose heartbeats stop past the timeout (a paused process) is
// reaped by the other; when it resumes it finds its record gone, is
// fenced, rejoins under a new id and never writes its old state back.
func TestFencedAfterPause(t *testing.T) {
	p, locals := pair(t)
	live, paused := p.engines[0], p.engines[1]
	ctx := context.Background()
	holdState(t, paused, "f")
	oldID := paused.NodeID()

	paused.pause.Store(true)
	locals[0].WaitFor(t, testNodeTimeout+enginetest.Wait, "the paused node reaped", func() bool { return len(locals[0].Orphans()) >= 3 })
	if got := orphanKinds(locals[0].Orphans()); got != wantOrphans {
		t.Fatalf("orphans %s, want %s", got, wantOrphans)
	}
	if locals[1].FencedCount() != 0 {
		t.Fatal("fenced while still paused")
	}

	paused.pause.Store(false)
	locals[1].WaitFor(t, enginetest.Wait, "the resumed node fenced", func() bool { return locals[1].FencedCount() == 1 })
	if id := paused.NodeID(); id == oldID || id == "" {
		t.Fatalf("node id after fencing %q (was %q)", id, oldID)
	}
	if !paused.Ready() {
		t.Fatal("not ready after rejoining")
	}
	// The hub now closes the old connections: those calls find nothing and
	// re-add nothing.
	if last, err := paused.PresenceRemove(ctx, "f", "presence-p", "c1", "ann"); err != nil || last {
		t.Fatalf("removing a fenced connection: %v %v", last, err)
	}
	if n, err := paused.Occupancy(ctx, "f", "ch", -1); err != nil || n != 0 {
		t.Fatalf("occupancy after fencing: %d %v", n, err)
	}
	if on, err := live.OnlineUsers(ctx, "f", []string{"bob"}); err != nil || len(on) != 0 {
		t.Fatalf("bob online after the reap: %v %v", on, err)
	}
	// Under its new id the node works as a fresh one.
	if first, err := paused.UserOnline(ctx, "f", "bob", "c3"); err != nil || !first {
		t.Fatalf("bob's first connection after rejoining: %v %v", first, err)
	}
	if len(locals[1].Orphans()) != 0 {
		t.Fatalf("the fenced node was handed its own orphans: %v", locals[1].Orphans())
	}
}

// Close removes the node's state and record at once: the other node sees
// it gone without waiting for a reaper, and the transitions are handed to
// the leaving node's own hub.
func TestCloseLeavesAtOnce(t *testing.T) {
	p, locals := pair(t)
	stay, leaving := p.engines[0], p.engines[1]
	ctx := context.Background()
	holdState(t, leaving, "g")
	if err := leaving.Close(); err != nil {
		t.Fatal(err)
	}
	if got := orphanKinds(locals[1].Orphans()); got != wantOrphans {
		t.Fatalf("leaving node's transitions %s, want %s", got, wantOrphans)
	}
	if _, ok, err := stay.Channel(ctx, "g", "ch"); err != nil || ok {
		t.Fatalf("channel still occupied after Close: %v %v", ok, err)
	}
	if ms, err := stay.PresenceMembers(ctx, "g", "presence-p"); err != nil || len(ms) != 0 {
		t.Fatalf("members after Close: %v %v", ms, err)
	}
	if on, err := stay.OnlineUsers(ctx, "g", []string{"bob"}); err != nil || len(on) != 0 {
		t.Fatalf("online after Close: %v %v", on, err)
	}
	if _, _, found, err := stay.read(ctx, nodeKey(leaving.NodeID())); err != nil || found {
		t.Fatalf("node record still there: %v %v", found, err)
	}
	if len(locals[0].Orphans()) != 0 {
		t.Fatalf("the staying node was handed orphans: %v", locals[0].Orphans())
	}
}

// Without our own successful heartbeats for a whole window (here: just
// joined), a node reaps no one.
func TestNoReapWithoutAFullWindow(t *testing.T) {
	p, _ := pair(t)
	e := p.engines[0]
	e.hb.mu.Lock()
	e.hb.okSince = time.Now()
	e.hb.seen["deadbeef"] = nodeSeen{at: time.Now().Add(-time.Hour), rev: 1}
	e.hb.mu.Unlock()
	e.reapDead()
	if _, _, found, _ := e.read(context.Background(), reapKey("deadbeef")); found {
		t.Fatal("a node without a full window of heartbeats took a reap lock")
	}
}

// A contribution from a node id that has no record (written by a node
// after it was reaped) is found by the sweep and reaped like a dead node.
func TestStrayNodeIDsAreSwept(t *testing.T) {
	p, locals := pair(t)
	e := p.engines[0]
	ctx := context.Background()
	if _, err := e.writeCount(ctx, occKey("s", "ghost"), "0badc0de", 1); err != nil {
		t.Fatal(err)
	}
	e.sweepStrays()
	locals[0].WaitFor(t, enginetest.Wait, "the stray reaped", func() bool { return len(locals[0].Orphans()) > 0 })
	if got := orphanKinds(locals[0].Orphans()); got != "[1/ghost/]" {
		t.Fatalf("orphans %s", got)
	}
}
