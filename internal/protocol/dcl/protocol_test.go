package dcl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
)

// Reference e2e 1: connect and send nothing: closed at the handshake
// timeout, not a tick before, with no message, by a close frame without a
// status. The clock is stepped: the timing is exact, not measured.
func TestSilenceClosesAfterTimeoutWithNoMessage(t *testing.T) {
	e := newSteppedEnv(t, func(o *Options) { o.HandshakeTimeout = time.Second })
	c := e.dial("/rooms/test")
	e.waitSessions(1)
	e.step(time.Second - testTick)
	if e.openSessions() != 1 {
		t.Fatal("closed before the handshake timeout")
	}
	e.step(2 * testTick)
	payload, _ := c.expectClosed(3*time.Second, "silent client")
	if len(payload) != 0 {
		t.Errorf("close frame payload %x, want none (no status, like ws.end())", payload)
	}
	e.waitErr(errHandshakeTimeout, 1)
}

// The second stage has its own timer: identify, then say nothing.
func TestChallengeStageTimeout(t *testing.T) {
	e := newSteppedEnv(t, nil)
	c := e.dial("/rooms/test")
	c.challenge(newPeer(t))
	e.step(400*time.Millisecond - testTick)
	if e.openSessions() != 1 {
		t.Fatal("closed before the challenge stage's timeout")
	}
	e.step(2 * testTick)
	c.expectClosed(3*time.Second, "silent after the challenge")
	e.waitErr(errHandshakeTimeout, 1)
}

// Each message clears the stage timer and the challenge restarts it: a
// client slower than one stage timeout in total, but quicker than it per
// stage, gets in.
func TestTimeoutIsPerStage(t *testing.T) {
	e := newSteppedEnv(t, nil)
	c := e.dial("/rooms/test")
	p := newPeer(t)
	e.waitSessions(1)
	e.step(300 * time.Millisecond)
	ch := c.challenge(p)
	e.step(300 * time.Millisecond)
	c.send(signedChallenge(authchaintest.JSON(p.login.Sign(ch.ChallengeToSign))))
	if c.next(2*time.Second, "welcome").GetWelcomeMessage() == nil {
		t.Fatal("no welcome")
	}
}

// Reference e2e 2: noise closes at once, with no message. The wheel of a
// stepped server never moves here, so the close is the input's doing, not
// a timer's.
func TestNoiseClosesWithNoMessage(t *testing.T) {
	e := newSteppedEnv(t, nil)
	c := e.dial("/rooms/test")
	c.sendRaw([]byte{1, 2, 3, 4, 5, 6})
	c.expectClosed(3*time.Second, "noise")
	e.waitErr(errMalformed, 1)
}

// Every bad input during the handshake ends only that connection, with no
// message, counted by reason; a joined pair in the same room notices
// nothing and keeps talking.
func TestBadHandshakesEndOnlyTheirConnection(t *testing.T) {
	// Stepped: no handshake timer fires, so every close is the bad input's.
	e := newSteppedEnv(t, nil)
	alice, bob := newPeer(t), newPeer(t)
	ca, _ := e.joined("room", alice)
	cb, wb := e.joined("room", bob)
	ca.next(time.Second, "bob's join")

	other, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	eph, _ := authchaintest.NewIdentity()
	cases := []struct {
		name   string
		reason string
		run    func(c *client, p *peer)
	}{
		{"welcome instead of identification", errUnexpected, func(c *client, p *peer) {
			c.send(&dclpb.WsPacket{Message: &dclpb.WsPacket_WelcomeMessage{WelcomeMessage: &dclpb.WsWelcome{Alias: 1}}})
		}},
		{"empty frame first", errUnexpected, func(c *client, p *peer) { c.sendRaw(nil) }},
		{"update before the handshake", errUnexpected, func(c *client, p *peer) { c.update([]byte{1}, false) }},
		{"address without 0x", errBadAddress, func(c *client, p *peer) { c.send(identification(p.addr[2:])) }},
		{"short address", errBadAddress, func(c *client, p *peer) { c.send(identification(p.addr[:40])) }},
		{"identification twice", errUnexpected, func(c *client, p *peer) {
			c.challenge(p)
			c.send(identification(p.addr))
		}},
		{"noise at stage two", errMalformed, func(c *client, p *peer) {
			c.challenge(p)
			c.sendRaw([]byte{0xff, 0xff, 0xff})
		}},
		{"chain not JSON", errAuthPrefix + "malformed", func(c *client, p *peer) {
			c.challenge(p)
			c.send(signedChallenge([]byte("{nope")))
		}},
		{"empty chain", errAuthPrefix + "too_short", func(c *client, p *peer) {
			c.challenge(p)
			c.send(signedChallenge([]byte("[]")))
		}},
		{"forged one-link chain", errAuthPrefix + "too_short", func(c *client, p *peer) {
			ch := c.challenge(p)
			c.send(signedChallenge([]byte(`[{"type":"SIGNER","payload":"` + ch.ChallengeToSign + `","signature":""}]`)))
		}},
		{"signs another challenge", errAuthPrefix + "wrong_payload", func(c *client, p *peer) {
			c.challenge(p)
			c.send(signedChallenge(authchaintest.JSON(p.login.Sign("dcl-somethingelse"))))
		}},
		{"chain of another wallet", errAuthPrefix + "wrong_owner", func(c *client, p *peer) {
			ch := c.challenge(p)
			c.send(signedChallenge(authchaintest.JSON(other.SimpleChain(ch.ChallengeToSign))))
		}},
		{"bad signature", errAuthPrefix + "bad_signature", func(c *client, p *peer) {
			ch := c.challenge(p)
			chain := p.login.Sign(ch.ChallengeToSign)
			chain[2].Signature = other.SignPersonal(ch.ChallengeToSign)
			c.send(signedChallenge(authchaintest.JSON(chain)))
		}},
		{"expired ephemeral key", errAuthPrefix + "expired", func(c *client, p *peer) {
			ch := c.challenge(p)
			c.send(signedChallenge(authchaintest.JSON(p.wallet.Chain(eph, time.Now().Add(-time.Minute), ch.ChallengeToSign))))
		}},
		{"contract wallet without RPC", errAuthPrefix + "eip1654_unavailable", func(c *client, p *peer) {
			ch := c.challenge(p)
			c.send(signedChallenge(authchaintest.JSON(authchain.Chain{
				{Type: authchain.TypeSigner, Payload: p.wallet.Address},
				{Type: authchain.TypeEIP1654SignedEntity, Payload: ch.ChallengeToSign, Signature: "0x" + strings.Repeat("ab", 80)},
			})))
		}},
		{"identification again instead of the chain", errUnexpected, func(c *client, p *peer) {
			c.challenge(p)
			c.send(identification(p.addr))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.errCount(tc.reason)
			c := e.dial("/rooms/room")
			c.t = t
			tc.run(c, newPeer(t))
			payload, _ := c.expectClosed(2*time.Second, tc.name)
			if len(payload) != 0 {
				t.Errorf("close payload %x, want none", payload)
			}
			e.waitErr(tc.reason, before+1)
		})
	}
	// The room is untouched: updates flow, and each one is the first
	// packet its receiver gets after the bad handshakes (no join or leave
	// of theirs arrived before it).
	ca.update([]byte("still here"), false)
	cb.nextUpdate("still here", "bob: alice's update first")
	cb.update([]byte("me too"), false)
	ca.nextUpdate("me too", "alice: bob's update first")
	if wb.Alias == 0 {
		t.Fatal("bob has alias 0")
	}
	if st := e.srv.Status(); st.Users != 2 || st.Rooms != 1 {
		t.Fatalf("status %+v", st)
	}
}

// Reference e2e 3 and the subprotocol rule: the first offered token comes
// back; none offered, none answered.
func TestJoinEchoesFirstSubprotocol(t *testing.T) {
	e := newEnv(t, nil)
	for i, offer := range [][]string{{"rfc5", "rfc4"}, {"comms-ws-transport"}, nil} {
		c := e.dial(fmt.Sprintf("/rooms/sub%d", i), offer...)
		want := ""
		if len(offer) > 0 {
			want = offer[0]
		}
		if c.hs.Protocol != want {
			t.Errorf("offered %v: answered %q, want %q", offer, c.hs.Protocol, want)
		}
		w, ch := c.join(newPeer(t))
		if w.Alias == 0 || len(w.PeerIdentities) != 0 {
			t.Errorf("welcome %v", w)
		}
		if !strings.HasPrefix(ch.ChallengeToSign, "dcl-") || len(ch.ChallengeToSign) != 29 || ch.AlreadyConnected {
			t.Errorf("challenge %v", ch)
		}
	}
}

// Reference e2e 5-7 and checklist 16-18, 21, 22: welcome lists the others
// (lower case), peer_join reaches the others only, updates reach every other
// peer with from_alias overwritten and body/unreliable untouched, never the
// sender, rooms are isolated, peer_leave on close, empty rooms deleted.
func TestRoomLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, clohe := newPeer(t), newPeer(t), newPeer(t)
	ca, wa := e.joined("testRoom", alice)
	cb, wb := e.joined("testRoom", bob)
	if got := wb.PeerIdentities; len(got) != 1 || got[wa.Alias] != alice.addr {
		t.Fatalf("bob's welcome identities %v, want {%d: %s}", got, wa.Alias, alice.addr)
	}
	j := ca.next(time.Second, "bob's join").GetPeerJoinMessage()
	if j == nil || j.Alias != wb.Alias || j.Address != bob.addr {
		t.Fatalf("alice got join %v", j)
	}

	ca.send(&dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{PeerUpdateMessage: &dclpb.WsPeerUpdate{FromAlias: 999, Body: []byte{1, 2, 3}}}})
	u := cb.next(time.Second, "alice's update").GetPeerUpdateMessage()
	if u == nil || u.FromAlias != wa.Alias || !bytes.Equal(u.Body, []byte{1, 2, 3}) || u.Unreliable {
		t.Fatalf("bob got %v", u)
	}
	cb.update([]byte{3, 2, 3}, true)
	u = ca.next(time.Second, "bob's update").GetPeerUpdateMessage()
	if u == nil || u.FromAlias != wb.Alias || !bytes.Equal(u.Body, []byte{3, 2, 3}) || !u.Unreliable {
		t.Fatalf("alice got %v", u)
	}

	// clohe in another room rings no bell, and her updates stay there.
	cc, wc := e.joined("another-room", clohe)
	if len(wc.PeerIdentities) != 0 {
		t.Fatalf("another-room welcome lists %v", wc.PeerIdentities)
	}
	relayed := e.metric("dcl_ws_rooms_sent_messages_total")
	cc.update([]byte{9}, false)
	e.waitRelayed(relayed + 1)
	// Her update is relayed (any echo would be queued by now); dave's join
	// is then the first packet she gets.
	dave := newPeer(t)
	cd, wd := e.joined("another-room", dave)
	if j := cc.next(time.Second, "dave's join").GetPeerJoinMessage(); j == nil || j.Alias != wd.Alias {
		t.Fatalf("clohe's first packet %v, want dave's join (no echo of her own update)", j)
	}
	_ = cc.conn.Close()
	_ = cd.conn.Close()
	// Nothing of another-room reached testRoom: each one's update is the
	// first packet the other gets.
	ca.update([]byte("a1"), false)
	cb.nextUpdate("a1", "bob while clohe is elsewhere")
	cb.update([]byte("b1"), false)
	ca.nextUpdate("b1", "alice while clohe is elsewhere")
	eventually(t, func() bool { return e.srv.Status().Rooms == 1 }, "another-room deleted")

	// clohe joins testRoom: her welcome lists both, both get her join and
	// her update; she never gets her own.
	cc, wc = e.joined("testRoom", clohe)
	if got := wc.PeerIdentities; len(got) != 2 || got[wa.Alias] != alice.addr || got[wb.Alias] != bob.addr {
		t.Fatalf("clohe's welcome identities %v", got)
	}
	for _, c := range []*client{ca, cb} {
		if j := c.next(time.Second, "clohe's join").GetPeerJoinMessage(); j == nil || j.Alias != wc.Alias || j.Address != clohe.addr {
			t.Fatalf("got join %v", j)
		}
	}
	cc.update([]byte{6}, false)
	for _, c := range []*client{ca, cb} {
		if u := c.next(time.Second, "clohe's update").GetPeerUpdateMessage(); u == nil || u.FromAlias != wc.Alias || !bytes.Equal(u.Body, []byte{6}) {
			t.Fatalf("got update %v", u)
		}
	}
	// No echo of her own update: alice's next one is clohe's first packet.
	ca.update([]byte("a2"), false)
	cc.nextUpdate("a2", "clohe after her own update")
	cb.nextUpdate("a2", "bob")
	_ = cc.write(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	for _, c := range []*client{ca, cb} {
		if l := c.next(time.Second, "clohe's leave").GetPeerLeaveMessage(); l == nil || l.Alias != wc.Alias {
			t.Fatalf("got leave %v", l)
		}
	}
	_ = ca.conn.Close()
	if l := cb.next(time.Second, "alice's leave").GetPeerLeaveMessage(); l == nil || l.Alias != wa.Alias {
		t.Fatalf("got leave %v", l)
	}
	_ = cb.conn.Close()
	eventually(t, func() bool { st := e.srv.Status(); return st.Rooms == 0 && st.Users == 0 }, "all rooms deleted")
	if n := e.metric("dcl_ws_rooms_connections_total"); n != 5 { // alice, bob, clohe twice, dave
		t.Errorf("connections_total %v, want 5", n)
	}
	if n := e.metric("dcl_ws_rooms_sent_messages_total"); n != 7 { // 4 updates, 3 markers
		t.Errorf("sent_messages_total %v, want 7", n)
	}
}

// Reference e2e 4 and checklist 15, across rooms: the second session's
// challenge says already_connected, the first gets peer_kicked and a close,
// and its room gets peer_leave before anything about the newcomer.
func TestDuplicateAddressKicksOldSession(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := newPeer(t), newPeer(t)
	a1, wa1 := e.joined("room-a", alice)
	cb, _ := e.joined("room-a", bob)
	a1.next(time.Second, "bob's join")

	a2 := e.dial("/rooms/room-b")
	wa2, ch := a2.join(alice)
	if !ch.AlreadyConnected {
		t.Error("second session's challenge: already_connected false")
	}
	k := a1.next(100*time.Millisecond, "kick").GetPeerKicked()
	if k == nil || k.Reason != ReasonRoomFull {
		t.Fatalf("old session got %v, want peer_kicked{%q}", k, ReasonRoomFull)
	}
	if payload, _ := a1.expectClosed(time.Second, "kicked session"); len(payload) != 0 {
		t.Errorf("close payload %x", payload)
	}
	if l := cb.next(time.Second, "old alice's leave").GetPeerLeaveMessage(); l == nil || l.Alias != wa1.Alias {
		t.Fatalf("bob got %v", l)
	}
	if wa2.Alias == wa1.Alias {
		t.Fatal("alias reused")
	}
	if n := e.metric("dcl_ws_rooms_kicks_total"); n != 1 {
		t.Errorf("kicks_total %v", n)
	}
	if st := e.srv.Status(); st.Users != 2 || st.Rooms != 2 {
		t.Errorf("status %+v", st)
	}
}

// Same room: the room hears peer_leave{old} strictly before peer_join{new},
// and the newcomer's welcome does not list its own old session.
func TestDuplicateAddressSameRoomOrder(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := newPeer(t), newPeer(t)
	cb, wb := e.joined("r", bob)
	a1, wa1 := e.joined("r", alice)
	cb.next(time.Second, "alice's first join")
	a2, wa2 := e.joined("r", alice)
	if len(wa2.PeerIdentities) != 1 || wa2.PeerIdentities[wb.Alias] != bob.addr {
		t.Fatalf("welcome %v", wa2.PeerIdentities)
	}
	if l := cb.next(time.Second, "leave").GetPeerLeaveMessage(); l == nil || l.Alias != wa1.Alias {
		t.Fatalf("first packet %v, want leave of the old session", l)
	}
	if j := cb.next(time.Second, "join").GetPeerJoinMessage(); j == nil || j.Alias != wa2.Alias {
		t.Fatalf("second packet %v, want join of the new session", j)
	}
	if a1.next(time.Second, "kick").GetPeerKicked() == nil {
		t.Fatal("no kick")
	}
	a2.update([]byte("new"), false)
	if u := cb.next(time.Second, "update").GetPeerUpdateMessage(); u == nil || u.FromAlias != wa2.Alias {
		t.Fatalf("update %v", u)
	}
}

// With session_scope: room, one address may be in two rooms at once.
func TestSessionPerRoom(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SessionPerRoom = true })
	alice := newPeer(t)
	a1, _ := e.joined("r1", alice)
	a2 := e.dial("/rooms/r2")
	_, ch := a2.join(alice)
	if ch.AlreadyConnected {
		t.Error("already_connected in another room with per-room sessions")
	}
	// The first session was not kicked: a newcomer's join in r1 is the
	// first packet it gets (a kick is sent before the kicker's welcome).
	_, wn := e.joined("r1", newPeer(t))
	if j := a1.next(time.Second, "newcomer's join").GetPeerJoinMessage(); j == nil || j.Alias != wn.Alias {
		t.Fatalf("first session got %v, want the newcomer's join", j)
	}
	// The same room still kicks.
	a3 := e.dial("/rooms/r1")
	if _, ch := a3.join(alice); !ch.AlreadyConnected {
		t.Error("no already_connected in the same room")
	}
	if a1.next(time.Second, "kick").GetPeerKicked() == nil {
		t.Fatal("no kick in the same room")
	}
}

// Checklist 9: a full room kicks with the reference's reason right after
// identification, and a leave frees the seat.
func TestRoomCapacity(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RoomCapacity = 2 })
	c1, _ := e.joined("full", newPeer(t))
	e.joined("full", newPeer(t))
	c3 := e.dial("/rooms/full")
	c3.send(identification(newPeer(t).addr))
	k := c3.next(time.Second, "kick").GetPeerKicked()
	if k == nil || k.Reason != "This world is full. Try again later." {
		t.Fatalf("got %v", k)
	}
	c3.expectClosed(time.Second, "kicked newcomer")
	e.waitErr("room_full", 1)
	// Another room is not full.
	e.joined("other", newPeer(t))
	_ = c1.conn.Close()
	eventually(t, func() bool { return e.srv.roomSize("full") == 1 }, "seat freed")
	e.joined("full", newPeer(t))
}

// Checklist 19, and early Godot builds: after the welcome, unknown, empty
// and misfit packets (raw rfc4 packets included) are ignored and counted;
// the connection stays and keeps relaying.
func TestUnknownPacketsAfterHandshakeAreIgnored(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := newPeer(t), newPeer(t)
	ca, wa := e.joined("godot", alice)
	cb, _ := e.joined("godot", bob)
	ca.next(time.Second, "join")
	junk := [][]byte{
		nil,                                  // empty frame: WsPacket{}
		{0x12, 0x02, 0x08, 0x05},             // rfc4 profile_version{5}: reads as a bogus peer_join
		{0x0a, 0x02, 0x08, 0x07},             // rfc4 position{index 7}: reads as a bogus welcome
		{0x3a, 0x04, 0x0a, 0x02, 0xff, 0xfe}, // rfc4 voice: a non-UTF-8 "identification"
		{0x42, 0x00},                         // peer_kicked from a client
		{0x48, 0x01},                         // field 9: an unknown oneof case
		{0x22, 0x00},                         // a challenge from a client
		{0x1d, 0x01, 0x02, 0x03, 0x04},       // field 3 with the wrong wire type: not an update
	}
	for _, j := range junk {
		ca.sendRaw(j)
	}
	ca.update([]byte("after"), false)
	u := cb.next(time.Second, "update after junk").GetPeerUpdateMessage()
	if u == nil || string(u.Body) != "after" || u.FromAlias != wa.Alias {
		t.Fatalf("bob got %v", u)
	}
	ca.update([]byte("marker"), false)
	cb.nextUpdate("marker", "bob after the junk")
	if n := e.metric("dcl_ws_rooms_unknown_sent_messages_total"); n != float64(len(junk)) {
		t.Errorf("unknown_sent_messages_total %v, want %d", n, len(junk))
	}
	if !ca.isOpen() {
		t.Fatal("alice was closed")
	}
}

// Checklist 20 after the handshake: an undecodable frame closes the peer
// (no message), and its room hears peer_leave at once.
func TestMalformedAfterJoinCloses(t *testing.T) {
	e := newEnv(t, nil)
	ca, wa := e.joined("m", newPeer(t))
	cb, _ := e.joined("m", newPeer(t))
	ca.next(time.Second, "join")
	ca.sendRaw([]byte{1, 2, 3, 4, 5, 6})
	ca.expectClosed(time.Second, "malformed after join")
	if l := cb.next(time.Second, "leave").GetPeerLeaveMessage(); l == nil || l.Alias != wa.Alias {
		t.Fatalf("bob got %v", l)
	}
	e.waitErr(errMalformed, 1)
}

// Checklist 4: a frame over max_message_bytes closes (1009), counted.
func TestFrameTooBig(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxMessageBytes = 2048 })
	c := e.dial("/rooms/big")
	c.sendRaw(make([]byte, 2049))
	payload, _ := c.expectClosed(3*time.Second, "big frame")
	if code, _ := ws.ParseCloseFrameData(payload); code != ws.StatusMessageTooBig {
		t.Errorf("close code %v", code)
	}
	e.waitErr(errTooBig, 1)

	ca, wa := e.joined("big", newPeer(t))
	cb, _ := e.joined("big", newPeer(t))
	ca.next(time.Second, "join")
	cb.update(make([]byte, 2000), false) // fits
	if u := ca.next(time.Second, "big update").GetPeerUpdateMessage(); u == nil || len(u.Body) != 2000 {
		t.Fatalf("got %v", u)
	}
	ca.update(make([]byte, 2100), false)
	if l := cb.next(3*time.Second, "leave").GetPeerLeaveMessage(); l == nil || l.Alias != wa.Alias {
		t.Fatalf("got %v", l)
	}
	e.waitErr(errTooBig, 2)
}

// Checklist 5: a joined peer gets pings; one that answers stays, one that
// stays silent is closed after the idle timeout and leaves its room.
func TestIdleTimeoutWithPings(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.IdleTimeout = 600 * time.Millisecond })
	ca, _ := e.joined("idle", newPeer(t))
	cb := e.dial("/rooms/idle")
	cb.noPong.Store(true)
	wb, _ := cb.join(newPeer(t))
	ca.next(time.Second, "join")
	if l := ca.next(3*time.Second, "leave of the silent peer").GetPeerLeaveMessage(); l == nil || l.Alias != wb.Alias {
		t.Fatalf("got %v", l)
	}
	cb.expectClosed(time.Second, "silent peer")
	e.waitErr(errIdleTimeout, 1)
	// The peer that answers outlives more than one idle timeout: a ping
	// goes out only after a third of it without input, so four more pings
	// (waited for as events, not slept through) span more than the whole
	// timeout. Idle checks run on the real clock: they compare with the
	// transport's LastRead, which has no test clock.
	pingsOf := func() int {
		ca.closeMu.Lock()
		defer ca.closeMu.Unlock()
		return ca.pings
	}
	base := pingsOf()
	eventually(t, func() bool { return pingsOf() >= base+4 }, "4 more pings to the peer that answers")
	if e.srv.roomSize("idle") != 1 || e.errCount(errIdleTimeout) != 1 {
		t.Fatalf("the peer that answers pings was closed (room size %d)", e.srv.roomSize("idle"))
	}
}

// Aliases count up per server from a random base (unrelated across the
// nodes of a cluster), never reused; failed handshakes burn theirs.
func TestAliasesNeverReused(t *testing.T) {
	e := newEnv(t, nil)
	_, w1 := e.joined("a", newPeer(t))
	bad := e.dial("/rooms/a")
	bad.sendRaw([]byte{0xff})
	bad.expectClosed(time.Second, "bad")
	_, w2 := e.joined("b", newPeer(t))
	if w1.Alias == 0 || w2.Alias != w1.Alias+2 {
		t.Fatalf("aliases %d, %d; want a, a+2 (a+1 burned)", w1.Alias, w2.Alias)
	}
}

// Checklist 1 and 23: routes, prefixes, raw room ids, status JSON, 404 JSON.
func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	e.joined("testRoom", newPeer(t))
	e.joined("testRoom", newPeer(t))
	e.joined("a%20b", newPeer(t))
	c := e.dial("/mini-comms/room-1?access_token=whatever")
	c.join(newPeer(t))

	for _, path := range []string{"/status", "/rooms/status", "/mini-comms/status"} {
		res, err := http.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %v", path, res.StatusCode, res.Header)
		}
		var st map[string]any
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"version", "currentTime", "commitHash", "users", "rooms", "details"} {
			if _, ok := st[k]; !ok {
				t.Errorf("%s: no %q in %s", path, k, body)
			}
		}
		if st["commitHash"] != "unknown" || st["users"] != 4.0 || st["rooms"] != 3.0 {
			t.Errorf("%s: %s", path, body)
		}
		want := `[{"count":1,"roomName":"a%20b"},{"count":1,"roomName":"room-1"},{"count":2,"roomName":"testRoom"}]`
		if d, _ := json.Marshal(st["details"]); string(d) != want {
			t.Errorf("%s details %s, want %s", path, d, want)
		}
	}
	res, err := http.Get(e.http.URL + "/rooms/a/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 404 || string(body) != `{"error":"Not Found"}` {
		t.Errorf("/rooms/a/b: %d %s", res.StatusCode, body)
	}
	res, err = http.Get(e.http.URL + "/health/live")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 200 || string(body) != "alive" {
		t.Errorf("/health/live: %d %s", res.StatusCode, body)
	}
	// A room may be called "status".
	s := e.dial("/rooms/status")
	s.join(newPeer(t))
	if e.srv.roomSize("status") != 1 {
		t.Error("room status not joined")
	}
}

// Checklist 24: the reference's metric names are exported.
func TestReferenceMetricNames(t *testing.T) {
	e := newEnv(t, nil)
	e.joined("m", newPeer(t))
	mfs, err := e.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, n := range []string{"dcl_ws_rooms_count", "dcl_ws_rooms_connections", "dcl_ws_rooms_connections_total",
		"dcl_ws_rooms_kicks_total", "dcl_ws_rooms_unknown_sent_messages_total", "dcl_ws_rooms_in_messages",
		"dcl_ws_rooms_in_bytes", "dcl_ws_rooms_out_messages", "dcl_ws_rooms_out_bytes", "ws_room_service_build_info"} {
		if !have[n] {
			t.Errorf("metric %s missing", n)
		}
	}
	if v := e.metric("dcl_ws_rooms_count"); v != 1 {
		t.Errorf("rooms_count %v", v)
	}
	if v := e.metric("dcl_ws_rooms_connections"); v != 1 {
		t.Errorf("connections %v", v)
	}
	if v := e.metric("switchboard_connections", "protocol", "dcl"); v != 1 {
		t.Errorf("switchboard_connections{dcl} %v", v)
	}
}

// Drain closes everyone and refuses newcomers.
func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	ca, _ := e.joined("d", newPeer(t))
	pending := e.dial("/rooms/d")
	ctx, cancel := contextWithTimeout(3 * time.Second)
	defer cancel()
	e.srv.Drain(ctx)
	if n := e.srv.Connections(); n != 0 {
		t.Fatalf("%d connections after drain", n)
	}
	for _, c := range []*client{ca, pending} {
		payload, _ := c.expectClosed(time.Second, "drained")
		if code, _ := ws.ParseCloseFrameData(payload); code != ws.StatusGoingAway {
			t.Errorf("close code %v", code)
		}
	}
	if _, err := e.tryDial("/rooms/d"); err == nil {
		t.Fatal("dial during drain succeeded")
	}
}

// max_connections refuses the upgrade with 503.
func TestMaxConnections(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnections = 1 })
	e.dial("/rooms/x")
	if _, err := e.tryDial("/rooms/x"); err == nil {
		t.Fatal("second connection accepted")
	}
	e.waitErr("server_full", 1)
}
