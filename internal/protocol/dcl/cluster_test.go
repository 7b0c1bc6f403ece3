package dcl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	redisengine "github.com/switchboard-rt/switchboard/internal/engine/redis"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/redistest"
)

// Rooms across a cluster: two or three nodes (each its own hub, server
// and HTTP listener) on one real redis-server, as docs/decentraland.md
// "Across a cluster" describes.

// testNodeTimeout is how long a silent node lives before another reaps it.
const testNodeTimeout = 2 * time.Second

// clusterRedis is one redis-server for the package's cluster tests; each
// cluster uses its own key prefix on it.
var clusterRedis redistest.Shared

// TestMain stops the shared redis-server after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	clusterRedis.Stop()
	os.Exit(code)
}

// needRedis returns the shared redis-server's address, starting it on
// first use; without redis-server the test is skipped (failed under CI).
func needRedis(t *testing.T) string { return clusterRedis.Get(t).Addr() }

// clusterNode is one node of a test cluster; crash stops its engine as a
// killed process would (no leave: the others reap it after
// testNodeTimeout), its sockets staying open.
type clusterNode struct {
	*testEnv
	crash context.CancelFunc
}

// startCluster starts n nodes on one Redis with a fresh key prefix.
func startCluster(t *testing.T, n int, mutate func(*Options)) []*clusterNode {
	t.Helper()
	addr := needRedis(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "dcl" + hex.EncodeToString(b) + ":"
	nodes := make([]*clusterNode, n)
	for i := range nodes {
		eng := redisengine.New(redisengine.Options{
			URL: "redis://" + addr, NodeName: fmt.Sprintf("n%d", i), Prefix: prefix,
			Heartbeat: 200 * time.Millisecond, NodeTimeout: testNodeTimeout, Logger: testLogger(),
		})
		m := metrics.New()
		h := hub.New(eng, m)
		engCtx, crash := context.WithCancel(context.Background())
		if err := h.Start(engCtx); err != nil {
			crash()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close(); crash() })
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		nodes[i] = &clusterNode{testEnv: startEnvOn(t, ctx, h, m, false, mutate), crash: crash}
	}
	return nodes
}

// skipToUpdate returns the next peer update, skipping peer_join and
// peer_leave packets; anything else (a peer_kicked) fails the test.
func (c *client) skipToUpdate(want, what string) *dclpb.WsPeerUpdate {
	c.t.Helper()
	for {
		p := c.next(3*time.Second, what)
		if p.GetPeerJoinMessage() != nil || p.GetPeerLeaveMessage() != nil {
			continue
		}
		u := p.GetPeerUpdateMessage()
		if u == nil || string(u.Body) != want {
			c.t.Fatalf("%s: got %v, want the update %q", what, p, want)
		}
		return u
	}
}

// Peers on two nodes see each other in the welcome, get each other's
// joins, updates and leaves; a third peer's welcome lists both.
func TestClusterRoomAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	alice, bob, carol := newPeer(t), newPeer(t), newPeer(t)

	ac, aw := a.joined("plaza", alice)
	if len(aw.PeerIdentities) != 0 {
		t.Fatalf("alice's welcome lists %v in an empty room", aw.PeerIdentities)
	}
	bc, bw := b.joined("plaza", bob)
	if bw.Alias == aw.Alias {
		t.Fatalf("two peers of one room share alias %d", bw.Alias)
	}
	if got := bw.PeerIdentities; len(got) != 1 || got[aw.Alias] != alice.addr {
		t.Fatalf("bob's welcome on node B lists %v, want {%d: %s}", got, aw.Alias, alice.addr)
	}
	j := ac.next(3*time.Second, "bob's join on node A").GetPeerJoinMessage()
	if j == nil || j.Alias != bw.Alias || j.Address != bob.addr {
		t.Fatalf("alice got join %v, want {%d %s}", j, bw.Alias, bob.addr)
	}

	ac.update([]byte("from-a"), true)
	if u := bc.nextUpdate("from-a", "alice's update on node B"); u.FromAlias != aw.Alias || !u.Unreliable {
		t.Fatalf("update %v, want from %d, unreliable", u, aw.Alias)
	}
	bc.update([]byte("from-b"), false)
	if u := ac.nextUpdate("from-b", "bob's update on node A"); u.FromAlias != bw.Alias || u.Unreliable {
		t.Fatalf("update %v, want from %d, reliable", u, bw.Alias)
	}

	cc, cw := a.joined("plaza", carol)
	if got := cw.PeerIdentities; len(got) != 2 || got[aw.Alias] != alice.addr || got[bw.Alias] != bob.addr {
		t.Fatalf("carol's welcome lists %v, want alice and bob", got)
	}
	if j := bc.next(3*time.Second, "carol's join on node B").GetPeerJoinMessage(); j == nil || j.Alias != cw.Alias {
		t.Fatalf("bob got %v, want carol's join (alias %d)", j, cw.Alias)
	}
	if j := ac.next(3*time.Second, "carol's join on node A").GetPeerJoinMessage(); j == nil || j.Alias != cw.Alias {
		t.Fatalf("alice got %v, want carol's join (alias %d)", j, cw.Alias)
	}

	_ = bc.conn.Close()
	for _, c := range []*client{ac, cc} {
		if l := c.next(3*time.Second, "bob's leave").GetPeerLeaveMessage(); l == nil || l.Alias != bw.Alias {
			t.Fatalf("got %v, want bob's leave (alias %d)", l, bw.Alias)
		}
	}
}

// The same address logging in on node B kicks its session on node A as a
// local duplicate would: peer_kicked with the reference's reason, then the
// close; the room hears the old alias leave and the new one join.
func TestClusterSameAddressKicksOtherNode(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	alice, bob := newPeer(t), newPeer(t)
	watcher, _ := a.joined("r", bob)
	old, ow := a.joined("r", alice)
	if j := watcher.next(3*time.Second, "alice's join").GetPeerJoinMessage(); j == nil || j.Alias != ow.Alias {
		t.Fatalf("watcher got %v, want alice's join", j)
	}

	fresh, fw := b.joined("r", alice)
	// The fresh alias's join comes from node B through the engine, the
	// kick from node A: the old session may hear the join first (seen
	// once in a full run), and nothing else.
	var k *dclpb.WsKicked
	for k == nil {
		p := old.next(3*time.Second, "kick on node A")
		if k = p.GetPeerKicked(); k == nil {
			if j := p.GetPeerJoinMessage(); j == nil || j.Alias != fw.Alias {
				t.Fatalf("old session got %v, want peer_kicked{%q}", p, ReasonRoomFull)
			}
		}
	}
	if k.Reason != ReasonRoomFull {
		t.Fatalf("old session got %v, want peer_kicked{%q}", k, ReasonRoomFull)
	}
	old.expectClosed(3*time.Second, "old session")
	// Its own address's old alias, which node A is still kicking, is not
	// listed.
	if got := fw.PeerIdentities; len(got) != 1 || got[aliasOf(t, fw, bob)] != bob.addr {
		t.Fatalf("fresh welcome lists %v, want only bob", got)
	}

	// The watcher hears the old alias leave and the new one join (they
	// come from two nodes, so in either order), then fresh's update.
	var left, joined bool
	for !left || !joined {
		p := watcher.next(3*time.Second, "leave and join")
		switch {
		case p.GetPeerLeaveMessage() != nil && p.GetPeerLeaveMessage().Alias == ow.Alias:
			left = true
		case p.GetPeerJoinMessage() != nil && p.GetPeerJoinMessage().Alias == fw.Alias:
			joined = true
		default:
			t.Fatalf("watcher got %v", p)
		}
	}
	fresh.update([]byte("still-here"), false)
	if u := watcher.nextUpdate("still-here", "fresh's update"); u.FromAlias != fw.Alias {
		t.Fatalf("update from %d, want %d", u.FromAlias, fw.Alias)
	}
	if n := a.metric("dcl_ws_rooms_kicks_total"); n != 1 {
		t.Fatalf("node A counted %v kicks, want 1", n)
	}
}

// aliasOf returns the alias under which welcome w lists address p.addr.
func aliasOf(t *testing.T, w *dclpb.WsWelcome, p *peer) uint32 {
	t.Helper()
	for a, addr := range w.PeerIdentities {
		if addr == p.addr {
			return a
		}
	}
	t.Fatalf("welcome %v does not list %s", w.PeerIdentities, p.addr)
	return 0
}

// Concurrent logins of one address on two nodes leave exactly one
// session: the other is kicked (after its welcome), and the survivor
// still relays.
func TestClusterConcurrentLoginsLeaveOne(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	for round := range 4 {
		room := fmt.Sprintf("race%d", round)
		bob := newPeer(t)
		watcher, _ := nodes[2].joined(room, bob)
		alice := newPeer(t)
		cs := [2]*client{nodes[0].dial("/rooms/" + room), nodes[1].dial("/rooms/" + room)}
		chs := [2]*dclpb.WsChallengeRequired{cs[0].challenge(alice), cs[1].challenge(alice)}
		for i, c := range cs { // both signed challenges in flight at once
			c.send(signedChallenge(authchaintest.JSON(alice.login.Sign(chs[i].ChallengeToSign))))
		}
		var ws [2]*dclpb.WsWelcome
		for i, c := range cs {
			if ws[i] = c.next(3*time.Second, "welcome").GetWelcomeMessage(); ws[i] == nil {
				t.Fatalf("round %d: login %d got no welcome", round, i)
			}
		}
		// Exactly one is kicked: wait for the first kick, then check the
		// other relays.
		var kicked int
		select {
		case <-cs[0].done:
			kicked = 0
		case <-cs[1].done:
			kicked = 1
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: both logins of one address still open", round)
		}
		var k *dclpb.WsKicked
		for k == nil {
			p := cs[kicked].next(time.Second, "kicked login")
			if p.GetPeerJoinMessage() == nil && p.GetPeerLeaveMessage() == nil {
				k = p.GetPeerKicked()
				if k == nil {
					t.Fatalf("round %d: kicked login got %v", round, p)
				}
			}
		}
		if k.Reason != ReasonRoomFull {
			t.Fatalf("round %d: kick reason %q", round, k.Reason)
		}
		survivor := cs[1-kicked]
		// The survivor's peer_join goes out once it is subscribed.
		for {
			j := watcher.next(3*time.Second, "the survivor's join")
			if j.GetPeerJoinMessage() != nil && j.GetPeerJoinMessage().Alias == ws[1-kicked].Alias {
				break
			}
		}
		watcher.update([]byte("hello"), false)
		survivor.skipToUpdate("hello", "survivor")
		survivor.update([]byte("alive"), false)
		if u := watcher.skipToUpdate("alive", "survivor's update"); u.FromAlias != ws[1-kicked].Alias {
			t.Fatalf("round %d: update from %d, want the survivor %d", round, u.FromAlias, ws[1-kicked].Alias)
		}
		// The kicked login leaves the room when its node has finished
		// closing it, which may be just after its client saw the close.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			ctx, cancel := engineCtx()
			n, err := nodes[2].srv.opts.Hub.PresenceCount(ctx, Namespace, room)
			cancel()
			if err == nil && n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: room has %d members (%v) 5 s after the kick, want 2", round, n, err)
			}
		}
	}
}

// The room capacity counts peers on every node.
func TestClusterCapacity(t *testing.T) {
	nodes := startCluster(t, 2, func(o *Options) { o.RoomCapacity = 2 })
	nodes[0].joined("small", newPeer(t))
	nodes[1].joined("small", newPeer(t))
	for _, n := range nodes {
		c := n.dial("/rooms/small")
		c.send(identification(newPeer(t).wallet.Address))
		k := c.next(3*time.Second, "full room").GetPeerKicked()
		if k == nil || k.Reason != ReasonRoomFull {
			t.Fatalf("third peer got %v, want peer_kicked{%q}", k, ReasonRoomFull)
		}
		c.expectClosed(3*time.Second, "third peer")
	}
}

// The capacity is checked again, atomically, at the join: two peers that
// both passed the early check on two nodes cannot both take the last seat.
func TestClusterCapacityAtJoin(t *testing.T) {
	nodes := startCluster(t, 2, func(o *Options) { o.RoomCapacity = 2 })
	nodes[0].joined("seat", newPeer(t))
	ps := [2]*peer{newPeer(t), newPeer(t)}
	cs := [2]*client{nodes[0].dial("/rooms/seat"), nodes[1].dial("/rooms/seat")}
	chs := [2]*dclpb.WsChallengeRequired{cs[0].challenge(ps[0]), cs[1].challenge(ps[1])}
	for i, c := range cs {
		c.send(signedChallenge(authchaintest.JSON(ps[i].login.Sign(chs[i].ChallengeToSign))))
	}
	welcomed, kicked := 0, 0
	for _, c := range cs {
		p := c.next(3*time.Second, "welcome or kick")
		switch {
		case p.GetWelcomeMessage() != nil:
			welcomed++
		case p.GetPeerKicked() != nil && p.GetPeerKicked().Reason == ReasonRoomFull:
			kicked++
		default:
			t.Fatalf("got %v", p)
		}
	}
	if welcomed != 1 || kicked != 1 {
		t.Fatalf("%d welcomed, %d kicked; want 1 and 1", welcomed, kicked)
	}
}

// When a node dies, the room's peers on the other nodes get peer_leave
// for each of its peers, from the node that reaps it.
func TestClusterDeadNodePeersLeave(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	ac, _ := a.joined("r", newPeer(t))
	_, bw := b.joined("r", newPeer(t))
	if j := ac.next(3*time.Second, "join").GetPeerJoinMessage(); j == nil || j.Alias != bw.Alias {
		t.Fatalf("got %v, want the join of %d", j, bw.Alias)
	}
	b.crash()
	l := ac.next(testNodeTimeout+5*time.Second, "peer_leave of the dead node's peer").GetPeerLeaveMessage()
	if l == nil || l.Alias != bw.Alias {
		t.Fatalf("got %v, want peer_leave{%d}", l, bw.Alias)
	}
}

// Two nodes that hand out the same alias (forced here: their counters
// start equal) never give it to two peers of one room: the second join
// finds the alias's member and takes its next alias.
func TestClusterAliasClash(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	b.srv.aliases.Store(a.srv.aliases.Load())
	alice, bob := newPeer(t), newPeer(t)
	ac, aw := a.joined("clash", alice)
	bc, bw := b.joined("clash", bob)
	if bw.Alias == aw.Alias {
		t.Fatalf("both peers have alias %d", aw.Alias)
	}
	if got := bw.PeerIdentities; len(got) != 1 || got[aw.Alias] != alice.addr {
		t.Fatalf("bob's welcome lists %v, want {%d: %s}", got, aw.Alias, alice.addr)
	}
	if j := ac.next(3*time.Second, "bob's join").GetPeerJoinMessage(); j == nil || j.Alias != bw.Alias {
		t.Fatalf("alice got %v, want bob's join as %d", j, bw.Alias)
	}
	bc.update([]byte("b"), false)
	if u := ac.nextUpdate("b", "bob's update"); u.FromAlias != bw.Alias {
		t.Fatalf("update from %d, want %d", u.FromAlias, bw.Alias)
	}
	ctx, cancel := engineCtx()
	defer cancel()
	if n, err := a.srv.opts.Hub.PresenceCount(ctx, Namespace, "clash"); err != nil || n != 2 {
		t.Fatalf("room has %d members (%v), want 2", n, err)
	}
}

// A login again on the same node, with a cluster engine, kicks the old
// session once: the node's registry kicks it and releases its claim
// before the new claim, so the engine has nobody left to kick.
func TestClusterSameNodeReloginKicksOnce(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	a := nodes[0]
	alice := newPeer(t)
	old, ow := a.joined("r", alice)
	fresh, fw := a.joined("r", alice)
	if k := old.next(3*time.Second, "kick").GetPeerKicked(); k == nil || k.Reason != ReasonRoomFull {
		t.Fatalf("old session got %v, want peer_kicked", k)
	}
	old.expectClosed(3*time.Second, "old session") // and no second packet before the close
	if len(fw.PeerIdentities) != 0 {
		t.Fatalf("fresh welcome lists %v, want nobody", fw.PeerIdentities)
	}
	// A peer on node B sees only the fresh session.
	bc, bw := nodes[1].joined("r", newPeer(t))
	if got := bw.PeerIdentities; len(got) != 1 || got[fw.Alias] != alice.addr || got[ow.Alias] != "" {
		t.Fatalf("welcome on node B lists %v, want {%d: %s}", got, fw.Alias, alice.addr)
	}
	if j := fresh.next(3*time.Second, "node B peer's join").GetPeerJoinMessage(); j == nil || j.Alias != bw.Alias {
		t.Fatalf("fresh got %v, want the join of %d", j, bw.Alias)
	}
	fresh.update([]byte("x"), false)
	bc.nextUpdate("x", "fresh's update")
	if n := a.metric("dcl_ws_rooms_kicks_total"); n != 1 {
		t.Fatalf("%v kicks, want 1", n)
	}
}
