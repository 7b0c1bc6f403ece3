package pusher

import (
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine"
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
