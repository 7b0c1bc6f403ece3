package dcl

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
)

// stallingEngine holds every room-membership add to one room until the
// test releases it: a store round trip as slow as the test wants.
type stallingEngine struct {
	engine.Engine
	room    string
	entered chan struct{} // closed by the first held call
	release chan struct{}
	once    sync.Once
	freed   sync.Once
}

// unstall lets the held calls, and every later one, through.
func (e *stallingEngine) unstall() { e.freed.Do(func() { close(e.release) }) }

func (e *stallingEngine) PresenceAdd(ctx context.Context, ns, channel, connKey string, m engine.Member, limit int) (bool, error) {
	if channel == e.room {
		e.once.Do(func() { close(e.entered) })
		select {
		case <-e.release:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	return e.Engine.PresenceAdd(ctx, ns, channel, connKey, m, limit)
}

// held is the number of keys with a holder or a waiter: no gate may
// outlive its users.
func (g *gates) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// newStallingEnv is newEnv on a memory engine whose adds to room stall.
func newStallingEnv(t *testing.T, room string) (*testEnv, *stallingEngine) {
	t.Helper()
	eng := &stallingEngine{Engine: memory.New(), room: room, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(eng.unstall)
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := hub.New(eng, m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return startEnvOn(t, ctx, h, m, false, nil), eng
}

// A join whose store round trip is slow holds up its own room only: on a
// cluster, one node-wide lock made every join and leave of the node wait
// for it (on that code this test fails: "welcome: nothing within 3s").
func TestASlowJoinHoldsUpOnlyItsRoom(t *testing.T) {
	e, eng := newStallingEnv(t, "stuck")
	// Two peers in room free before the stall.
	stay, _ := e.joined("free", newPeer(t))
	going, _ := e.joined("free", newPeer(t))
	stay.next(time.Second, "the second peer's join")

	stuck := e.dial("/rooms/stuck")
	stuckPeer := newPeer(t)
	ch := stuck.challenge(stuckPeer)
	stuck.send(signedChallenge(authchaintest.JSON(stuckPeer.login.Sign(ch.ChallengeToSign))))
	select {
	case <-eng.entered:
	case <-time.After(3 * time.Second):
		t.Fatal("the join to room stuck never reached the store")
	}

	// Another room's join and leave go through meanwhile.
	_, w := e.joined("free", newPeer(t))
	if len(w.PeerIdentities) != 2 {
		t.Fatalf("welcome to room free lists %d peers, want 2", len(w.PeerIdentities))
	}
	if j := stay.next(time.Second, "the third peer's join").GetPeerJoinMessage(); j == nil {
		t.Fatal("no peer_join in room free while room stuck's join stalls")
	}
	_ = going.conn.Close()
	if l := stay.next(2*time.Second, "the leave in room free").GetPeerLeaveMessage(); l == nil {
		t.Fatal("no peer_leave in room free while room stuck's join stalls")
	}

	// The stalled join completes once its store answers.
	eng.unstall()
	if w := stuck.next(3*time.Second, "welcome to room stuck").GetWelcomeMessage(); w == nil {
		t.Fatal("the stalled join got no welcome")
	}
	eventually(t, func() bool { return e.srv.roomGates.held() == 0 && e.srv.addrGates.held() == 0 }, "gates left behind")
}

// Two joins of one address at once on one node: the address's gate
// orders them, so the later kicks the earlier and exactly one stays, in
// either room.
func TestTwoJoinsOfOneAddressAtOnceLeaveOne(t *testing.T) {
	e := newEnv(t, nil)
	p := newPeer(t)
	a, b := e.dial("/rooms/one"), e.dial("/rooms/two")
	cha, chb := a.challenge(p), b.challenge(p)
	a.send(signedChallenge(authchaintest.JSON(p.login.Sign(cha.ChallengeToSign))))
	b.send(signedChallenge(authchaintest.JSON(p.login.Sign(chb.ChallengeToSign))))
	eventually(t, func() bool { return e.srv.roomSize("one")+e.srv.roomSize("two") == 1 && (!a.isOpen() || !b.isOpen()) },
		"one of the two sessions left joined (rooms one %d, two %d)", e.srv.roomSize("one"), e.srv.roomSize("two"))
	if s := e.srv.sessionOf(p.addr); s == nil {
		t.Fatal("the address has no session")
	}
	eventually(t, func() bool { return e.srv.roomGates.held() == 0 && e.srv.addrGates.held() == 0 }, "gates left behind")
}
