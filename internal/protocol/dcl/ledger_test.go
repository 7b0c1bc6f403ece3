package dcl

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// sessionOf is the server's session with the welcome's alias.
func (e *testEnv) sessionOf(alias uint32) *session {
	e.t.Helper()
	for _, ss := range e.serverSessions() {
		ss.mu.Lock()
		a := ss.alias
		ss.mu.Unlock()
		if a == alias {
			return ss
		}
	}
	e.t.Fatalf("no session with alias %d", alias)
	return nil
}

// wantAnnouncements reads packets until the peer update with body marker
// and compares the announcements before it with want ("join N", "leave N").
func wantAnnouncements(t *testing.T, c *client, marker string, want ...string) {
	t.Helper()
	var got []string
	for {
		p := c.next(2*time.Second, "announcement or "+marker)
		switch m := p.Message.(type) {
		case *dclpb.WsPacket_PeerJoinMessage:
			got = append(got, fmt.Sprintf("join %d", m.PeerJoinMessage.Alias))
		case *dclpb.WsPacket_PeerLeaveMessage:
			got = append(got, fmt.Sprintf("leave %d", m.PeerLeaveMessage.Alias))
		case *dclpb.WsPacket_PeerUpdateMessage:
			if string(m.PeerUpdateMessage.Body) != marker {
				t.Fatalf("update %q before the marker %q", m.PeerUpdateMessage.Body, marker)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("announcements %v, want %v", got, want)
			}
			return
		default:
			t.Fatalf("unexpected packet %v", p)
		}
	}
}

// On a cluster an announcement published just before this node subscribed
// to the room can arrive after the welcome (or catch-up) that already
// counted it. A newly joined client hears each peer's join and leave once,
// as from the reference; once the window has passed, deliveries are no
// longer checked (and the ledger is let go).
func TestANewPeerHearsEachAnnouncementOnce(t *testing.T) {
	e := newSteppedEnv(t, nil)
	room := "ledger"
	alice, aw := e.joined(room, newPeer(t))
	bob, bw := e.joined(room, newPeer(t))
	if _, ok := bw.PeerIdentities[aw.Alias]; !ok {
		t.Fatalf("bob's welcome %v lacks alice %d", bw.PeerIdentities, aw.Alias)
	}
	if j := alice.next(2*time.Second, "bob's join").GetPeerJoinMessage(); j == nil || j.Alias != bw.Alias {
		t.Fatalf("alice: want bob's join, got %v", j)
	}
	bobSS := e.sessionOf(bw.Alias)
	deliver := func(p []byte) { bobSS.Deliver(transport.Binary(p)) }

	deliver(encodePeerJoin(aw.Alias, "0x1")) // alice again: in the welcome
	deliver(encodePeerJoin(777, "0x2"))
	deliver(encodePeerJoin(777, "0x2")) // a second copy
	deliver(encodePeerLeave(777))
	deliver(encodePeerLeave(777))
	deliver(encodePeerJoin(777, "0x2")) // a copy after its leave
	deliver(encodePeerLeave(999))       // never announced
	alice.update([]byte("m1"), false)
	wantAnnouncements(t, bob, "m1", "join 777", "leave 777")

	// Past the window (the joined timer may or may not have let the
	// ledger go yet; the next delivery does in any case).
	e.step(announcementWindow + time.Second)
	deliver(encodePeerJoin(aw.Alias, "0x1"))
	alice.update([]byte("m2"), false)
	wantAnnouncements(t, bob, "m2", fmt.Sprintf("join %d", aw.Alias))
	if bobSS.ledger.Load() != nil {
		t.Fatal("the ledger outlived its window")
	}
}

// A quiet room's newcomer lets its ledger go when the window ends, not at
// its first keep-alive check, a third of idle_timeout later: after a
// storm of joins, every peer's ledger (its room's aliases and the
// announcements since) would otherwise be held that long.
func TestALedgerGoesWhenItsWindowEnds(t *testing.T) {
	e := newSteppedEnv(t, nil)
	e.joined("quiet", newPeer(t))
	_, bw := e.joined("quiet", newPeer(t))
	bobSS := e.sessionOf(bw.Alias)
	// The welcome is queued just before the ledger is stored.
	eventually(t, func() bool { return bobSS.ledger.Load() != nil }, "bob's ledger")
	e.step(announcementWindow + 2*time.Second)
	if bobSS.ledger.Load() != nil {
		t.Fatalf("the ledger is still held %v after the join, with no traffic", announcementWindow+2*time.Second)
	}
	if left := e.srv.opts.IdleTimeout / 3; left <= announcementWindow+2*time.Second {
		t.Fatalf("the keep-alive check (%v) comes before the window ends: the test shows nothing", left)
	}
}

// The catch-up sends the difference between the room as read after the
// subscription and what the client heard, including what arrived since
// the subscription; copies that come later are dropped.
func TestCatchUpAgreesWithDeliveriesSinceTheSubscription(t *testing.T) {
	e := newSteppedEnv(t, nil)
	room := "ledger-catchup"
	alice, aw := e.joined(room, newPeer(t))
	bob, bw := e.joined(room, newPeer(t))
	_ = alice.next(2*time.Second, "bob's join")
	bobSS := e.sessionOf(bw.Alias)

	// As if bob had just been welcomed with peers 1 and 2 (alice aside)
	// and subscribed.
	l := newPeerLedger([]identity{{aw.Alias, "0xa"}, {1, "0x1"}, {2, "0x2"}})
	bobSS.ledger.Store(l)
	deliver := func(p []byte) { bobSS.Deliver(transport.Binary(p)) }
	deliver(encodePeerLeave(2))       // 2 left after the subscription
	deliver(encodePeerJoin(3, "0x3")) // 3 joined after it
	// The room as read next: 1 has gone (its leave was published before
	// the subscription), 2's leave is not yet in the store, 4 joined
	// before the subscription.
	bobSS.catchUpLedger(l, []identity{{aw.Alias, "0xa"}, {2, "0x2"}, {3, "0x3"}, {4, "0x4"}})
	deliver(encodePeerLeave(1))       // 1's own leave, late
	deliver(encodePeerJoin(4, "0x4")) // 4's own join, late
	deliver(encodePeerJoin(2, "0x2")) // a late copy of 2's join
	alice.update([]byte("m"), false)
	wantAnnouncements(t, bob, "m", "leave 2", "join 3", "join 4", "leave 1")
}

func TestAnnouncedAlias(t *testing.T) {
	for _, alias := range []uint32{0, 1, 127, 128, 1 << 31, 1<<32 - 1} {
		if a, ok := announcedAlias(encodePeerJoin(alias, "0xabc")); !ok || a != alias {
			t.Errorf("join %d: read %d, %v", alias, a, ok)
		}
		if a, ok := announcedAlias(encodePeerLeave(alias)); !ok || a != alias {
			t.Errorf("leave %d: read %d, %v", alias, a, ok)
		}
	}
	for _, bad := range [][]byte{{tagPeerJoin}, {tagPeerJoin, 5, 8}, {tagPeerLeave, 2, 8, 0x80}} {
		if _, ok := announcedAlias(bad); ok {
			t.Errorf("%x: read as an announcement", bad)
		}
	}
}
