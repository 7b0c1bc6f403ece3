package redisengine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/enginetest"
)

func recorders(n int) []*enginetest.Recorder {
	out := make([]*enginetest.Recorder, n)
	for i := range out {
		out[i] = enginetest.NewRecorder()
	}
	return out
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func orphansIn(ls []*enginetest.Recorder) []string {
	var out []string
	for _, l := range ls {
		for _, o := range l.Orphans() {
			out = append(out, fmt.Sprintf("%d/%s/%s", o.Kind, o.Channel, o.Member.UserID))
		}
	}
	slices.Sort(out)
	return out
}

// TestFencedNodeRejoinsUnderNewID pauses a node's heartbeats past the node
// timeout: the others reap it, Redis refuses its writes under the old id,
// and when its heartbeats resume it is fenced and rejoins as a new node,
// with none of its old state coming back.
func TestFencedNodeRejoinsUnderNewID(t *testing.T) {
	locals := recorders(2)
	nodes := startNodes(t, sharedRedis(t).URL(), locals)
	live, paused := nodes[0], nodes[1]
	ctx := tctx(t)
	const ns = "app"
	must[int](t)(paused.Occupancy(ctx, ns, "room", 1))
	must[bool](t)(paused.PresenceAdd(ctx, ns, "presence-room", "c1", engine.Member{UserID: "ann"}, 0))
	must[bool](t)(paused.UserOnline(ctx, ns, "ann", "c1"))
	oldID := paused.NodeID()

	paused.pauseHB.Store(true)
	enginetest.WaitForAny(t, locals[:1], testNodeTimeout+enginetest.Wait, "the live node reaps the paused one", func() bool {
		return len(locals[0].Orphans()) >= 3
	})
	if got, want := orphansIn(locals[:1]), []string{"1/room/", "2/presence-room/ann", "3//ann"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("orphans %v, want %v", got, want)
	}
	// Still paused, it cannot add state under the reaped id.
	if _, err := paused.Occupancy(ctx, ns, "room", 1); !errors.Is(err, errFenced) {
		t.Fatalf("a reaped node's write: err %v, want errFenced", err)
	}
	if _, ok, _ := live.Channel(ctx, ns, "room"); ok {
		t.Fatal("the reaped node's refused write occupied the channel")
	}

	paused.pauseHB.Store(false)
	locals[1].WaitFor(t, enginetest.Wait, "the paused node is fenced", func() bool { return locals[1].FencedCount() == 1 })
	if paused.NodeID() == oldID {
		t.Fatalf("node id %s unchanged after fencing", oldID)
	}
	// The hub now closes the old connections: their removals are no-ops,
	// never a second member_removed or offline.
	if last := must[bool](t)(paused.PresenceRemove(ctx, ns, "presence-room", "c1", "ann")); last {
		t.Fatal("a fenced connection's removal reported member_removed")
	}
	if last := must[bool](t)(paused.UserOffline(ctx, ns, "ann", "c1")); last {
		t.Fatal("a fenced connection's offline reported the user offline")
	}
	// Under its new id it is a node like any other.
	if n := must[int](t)(paused.Occupancy(ctx, ns, "room", 1)); n != 1 {
		t.Fatalf("occupancy under the new id = %d, want 1 (occupied)", n)
	}
	if first := must[bool](t)(paused.PresenceAdd(ctx, ns, "presence-room", "c2", engine.Member{UserID: "ann"}, 0)); !first {
		t.Fatal("ann's new connection after fencing was not member_added")
	}
	must[struct{}](t)(struct{}{}, live.Interest(ctx, ns, "news", true))
	must[struct{}](t)(struct{}{}, paused.Publish(ctx, engine.Publication{Namespace: ns, Channel: "news", Payload: []byte("after")}))
	locals[0].WaitFor(t, enginetest.Wait, "a publication from the rejoined node", func() bool { return len(locals[0].Deliveries()) == 1 })
	if len(locals[1].Deliveries()) != 0 {
		t.Fatal("the publisher, without interest, received its own publication")
	}
}

// TestCloseLeavesAtOnce: a graceful Close removes the node's state and
// record before it returns, with the transitions handed to its own hub.
func TestCloseLeavesAtOnce(t *testing.T) {
	locals := recorders(2)
	nodes := startNodes(t, sharedRedis(t).URL(), locals)
	stay, leave := nodes[0], nodes[1]
	ctx := tctx(t)
	const ns = "app"
	must[int](t)(stay.Occupancy(ctx, ns, "shared", 1))
	must[int](t)(leave.Occupancy(ctx, ns, "shared", 1))
	must[int](t)(leave.Occupancy(ctx, ns, "solo", 1))
	must[bool](t)(leave.PresenceAdd(ctx, ns, "presence-p", "c1", engine.Member{UserID: "bob"}, 0))
	must[bool](t)(leave.UserOnline(ctx, ns, "bob", "c1"))
	must[string](t)(leave.Claim(ctx, ns, "0xabc", "c1"))
	id := leave.NodeID()

	if err := leave.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := orphansIn(locals[1:]), []string{"1/solo/", "2/presence-p/bob", "3//bob"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the leaving node's transitions %v, want %v", got, want)
	}
	if len(locals[0].Orphans()) != 0 {
		t.Fatalf("the staying node got orphans %v", orphansIn(locals[:1]))
	}
	if st, ok, _ := stay.Channel(ctx, ns, "shared"); !ok || st.Subscriptions != 1 {
		t.Fatalf("shared = %v %v, want 1 subscription", st, ok)
	}
	if _, ok, _ := stay.Channel(ctx, ns, "solo"); ok {
		t.Fatal("solo still occupied")
	}
	if ms := must[[]engine.Member](t)(stay.PresenceMembers(ctx, ns, "presence-p")); len(ms) != 0 {
		t.Fatalf("members left behind: %v", ms)
	}
	if on := must[[]string](t)(stay.OnlineUsers(ctx, ns, []string{"bob"})); len(on) != 0 {
		t.Fatalf("bob still online: %v", on)
	}
	if prev := must[string](t)(stay.Claim(ctx, ns, "0xabc", "c9")); prev != "" {
		t.Fatalf("the leaver's claim survived: prev %q", prev)
	}
	c := stay.client
	if n := must[int64](t)(c.Do(ctx, c.B().Zcard().Key(stay.k.nodes()).Build()).AsInt64()); n != 1 {
		t.Fatalf("%d node records, want 1", n)
	}
	if ids := must[[]string](t)(c.Do(ctx, c.B().Smembers().Key(stay.k.known()).Build()).AsStrSlice()); len(ids) != 1 || ids[0] != stay.NodeID() {
		t.Fatalf("known ids %v, want only %s", ids, stay.NodeID())
	}
	for _, kind := range indexKinds {
		if n := must[int64](t)(c.Do(ctx, c.B().Exists().Key(stay.k.index(id, kind)).Build()).AsInt64()); n != 0 {
			t.Fatalf("index %s of the leaver remains", kind)
		}
	}
}

// TestRedisRestart kills redis-server and starts an empty one on the same
// port: every node finds its record gone, fences and rejoins, and
// publications flow again.
func TestRedisRestart(t *testing.T) {
	srv := startRedis(t)
	locals := recorders(2)
	nodes := startNodes(t, srv.URL(), locals)
	ctx := tctx(t)
	const ns = "app"
	for _, n := range nodes {
		must[struct{}](t)(struct{}{}, n.Interest(ctx, ns, "news", true))
	}
	oldIDs := []string{nodes[0].NodeID(), nodes[1].NodeID()}

	srv.Restart(t)
	enginetest.WaitForAny(t, locals, testNodeTimeout+enginetest.Wait, "both nodes fence", func() bool {
		return locals[0].FencedCount() >= 1 && locals[1].FencedCount() >= 1
	})
	for i, n := range nodes {
		if n.NodeID() == oldIDs[i] {
			t.Fatalf("node %d kept its id after Redis lost its record", i)
		}
	}
	// Delivery is at-most-once while the subscription comes back, so
	// publish until one arrives; every node's interest must be restored.
	deadline := time.Now().Add(enginetest.Wait)
	for k := 0; ; k++ {
		err := nodes[0].Publish(ctx, engine.Publication{Namespace: ns, Channel: "news", Payload: fmt.Appendf(nil, "p%d", k)})
		if err == nil && len(locals[1].Deliveries()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery %v after Redis came back (last publish err %v)", enginetest.Wait, err)
		}
		time.Sleep(50 * time.Millisecond) // retrying a lossy send, not waiting for an event
	}
	// Readiness comes back with the node's new record, which may land just
	// after the subscriptions that already deliver.
	enginetest.WaitForAny(t, locals, enginetest.Wait, "both nodes ready again", func() bool {
		return nodes[0].Ready() && nodes[1].Ready()
	})
}

// TestInterestAfterCloseReturns: a hub still unsubscribing its channels
// after the engine closed must not hang.
func TestInterestAfterCloseReturns(t *testing.T) {
	nodes := startNodes(t, sharedRedis(t).URL(), recorders(1))
	if err := nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Interest(context.Background(), "app", "news", false); err != nil {
		t.Fatal(err)
	}
}

// TestAwkwardNames: namespaces and channels with colons, braces, NUL and
// range characters keep apart and answer prefix queries exactly.
func TestAwkwardNames(t *testing.T) {
	locals := recorders(2)
	nodes := startNodes(t, sharedRedis(t).URL(), locals)
	ctx := tctx(t)
	type nc struct{ ns, ch string }
	names := []nc{{"dcl:room", "x"}, {"dcl", "room:x"}, {"a{b}", "}c{"}, {"a{b}", "[lo"}, {"a{b}", "(lo"}, {"a{b}", "-"}, {"a{b}", "n\x00ul"}}
	for i, n := range names {
		if got := must[int](t)(nodes[i%2].Occupancy(ctx, n.ns, n.ch, 1)); got != 1 {
			t.Fatalf("%q: occupancy %d, want 1 (each name is its own channel)", n, got)
		}
		must[bool](t)(nodes[i%2].PresenceAdd(ctx, n.ns, n.ch, "c", engine.Member{UserID: n.ch}, 0))
	}
	all := must[map[string]engine.ChannelStats](t)(nodes[0].Channels(ctx, "a{b}", ""))
	if len(all) != 5 {
		t.Fatalf("a{b} channels %v", all)
	}
	for _, prefix := range []string{"[", "(", "-", "n\x00", "}"} {
		got := must[map[string]engine.ChannelStats](t)(nodes[1].Channels(ctx, "a{b}", prefix))
		if len(got) != 1 {
			t.Fatalf("prefix %q: %v", prefix, got)
		}
		for name, st := range got {
			if name[:len(prefix)] != prefix || st != (engine.ChannelStats{Subscriptions: 1, Users: 1}) {
				t.Fatalf("prefix %q: %q %v", prefix, name, st)
			}
		}
	}
	for _, n := range names {
		ms := must[[]engine.Member](t)(nodes[1].PresenceMembers(ctx, n.ns, n.ch))
		if len(ms) != 1 || ms[0].UserID != n.ch {
			t.Fatalf("%q members %v", n, ms)
		}
	}
	// Publications keep their names across nodes.
	for _, n := range names {
		must[struct{}](t)(struct{}{}, nodes[1].Interest(ctx, n.ns, n.ch, true))
		must[struct{}](t)(struct{}{}, nodes[0].Publish(ctx, engine.Publication{Namespace: n.ns, Channel: n.ch, Payload: []byte(n.ns + "/" + n.ch)}))
	}
	locals[1].WaitFor(t, enginetest.Wait, "every publication", func() bool { return len(locals[1].Deliveries()) == len(names) })
	for i, p := range locals[1].Deliveries() {
		if p.Namespace != names[i].ns || p.Channel != names[i].ch || string(p.Payload) != names[i].ns+"/"+names[i].ch {
			t.Fatalf("delivery %d: %+v", i, p)
		}
	}
}
