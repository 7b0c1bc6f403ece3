package pusher

import (
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

// A member whose last connection was on a node that died is removed by
// the node the cluster hands the transition to: its subscribers see
// member_removed as if the member had left.
func TestOrphanedMemberRemovedReachesSubscribers(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.connect()
	bob.join("presence-room", `{"user_id":"bob"}`)
	e.srv.opts.Hub.Orphaned(engine.Orphan{Kind: engine.OrphanMemberRemoved, Namespace: "app-id", Channel: "presence-room", Member: engine.Member{UserID: "ghost"}})
	f := bob.expect("pusher_internal:member_removed")
	if f.dataString() != `{"user_id":"ghost"}` || f.Channel != "presence-room" {
		t.Fatalf("member_removed %s", f.raw)
	}
}

// A fenced node asks every client to reconnect elsewhere with 4200.
func TestFencedNodeAsksClientsToReconnect(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	c.subscribe("news", "", "")
	c.expect("pusher_internal:subscription_succeeded")
	e.srv.opts.Hub.Fenced()
	f := c.expect("pusher:error")
	if string(f.Data) != `{"code":4200,"message":"This node left the cluster; reconnect."}` {
		t.Fatalf("error %s", f.raw)
	}
	c.expectClose(4200)
}

// The webhook pairing race, made deterministic: a leave on one node has
// decided that the member is gone but not yet written its marker when a
// re-join on another node looks for it. The announcement made before the
// leave's store call makes the re-join wait for the marker and pair with
// it, instead of sending a second member_added while the removal is held.
func TestReJoinWaitsForAnAnnouncedLeavesMarker(t *testing.T) {
	kv := memory.New()
	// webhooksOn needs a dispatcher and a target; nothing is sent here.
	leaving := &Server{opts: Options{ClusterWebhooks: kv, Webhooks: &webhook.Dispatcher{}}, log: slog.New(slog.DiscardHandler)}
	app := &App{ID: "app-id", webhook: &webhook.Target{}}
	withdraw := leaving.announceLeave(app, "member_removed", "presence-room", "bob")
	go func() {
		time.Sleep(50 * time.Millisecond) // the leave's store call
		if !leaving.clusterWebhook(app, webhook.Event{Name: "member_removed", Channel: "presence-room", UserID: "bob"}) {
			t.Error("the removal itself must be emitted (held)")
		}
		withdraw()
	}()
	if !takeHeld(kv, app.ID, "member_removed", "presence-room", "bob") {
		t.Fatal("the re-join did not pair with the announced leave's marker")
	}
	// Nothing announced and no marker: a join goes out at once.
	start := time.Now()
	if takeHeld(kv, app.ID, "member_removed", "presence-room", "carol") {
		t.Fatal("paired with a leave that never happened")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("an unannounced join waited %v", d)
	}
}
