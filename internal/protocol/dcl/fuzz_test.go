package dcl

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// recConn is an in-memory transport.Conn that records what the session
// sends and how it closes, for the state-machine fuzz target. Like the real
// transport, it refuses sends once closed.
type recConn struct {
	id        uint64
	mu        sync.Mutex
	sent      [][]byte
	closed    bool
	closeCode uint16
	closes    int
}

func (c *recConn) ID() uint64           { return c.id }
func (c *recConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *recConn) Ping()                {}
func (c *recConn) LastRead() time.Time  { return time.Now() } // never idle: idle checks are real-time
func (c *recConn) QueuedBytes() int     { return 0 }

func (c *recConn) Send(m *transport.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return transport.ErrClosed
	}
	c.sent = append(c.sent, m.Payload)
	return nil
}

func (c *recConn) Close(code uint16, _ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	if !c.closed {
		c.closed, c.closeCode = true, code
	}
}

func (c *recConn) packets(t *testing.T) []*dclpb.WsPacket {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*dclpb.WsPacket, len(c.sent))
	for i, b := range c.sent {
		out[i] = &dclpb.WsPacket{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			t.Fatalf("sent an undecodable packet %x: %v", b, err)
		}
	}
	return out
}

// fuzzRig is one server for the whole fuzz run, stepped by hand, and the
// two identities the inputs may use.
type fuzzRig struct {
	srv      *Server
	wheel    *timewheel.Wheel
	clock    *testClock
	fuzzed   *peer                   // the identity the fuzzed connection may sign as
	other    *authchaintest.Identity // a wallet for wrong-owner chains
	observer *peer
	nextID   uint64
}

func newFuzzRig(f testing.TB) *fuzzRig {
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		f.Fatal(err)
	}
	other, err := authchaintest.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	r := &fuzzRig{wheel: timewheel.New(testTick, 64), clock: &testClock{now: time.Now()},
		fuzzed: longLivedPeer(f), other: other, observer: longLivedPeer(f)}
	r.srv = NewServer(Options{Hub: h, Wheel: r.wheel, Metrics: m, Logger: testLogger(), Now: r.clock.Now,
		HandshakeTimeout: 200 * time.Millisecond, MaxMessageBytes: 2048, RoomCapacity: 4})
	return r
}

// Operations of a fuzz input: each starts with one byte, op = b % 8.
const (
	fopRaw         = iota // next byte n, then n bytes: one frame as is
	fopIdentify           // peer_identification of the fuzzed identity
	fopSign               // the fuzzed identity's chain over the session's challenge
	fopBadChain           // another wallet's chain over the challenge
	fopUpdate             // next byte n, n bytes of body: a peer update (byte n&1: unreliable)
	fopStep               // next byte n: step clock and wheel by n%64 ticks
	fopObserver           // the observer sends an update
	fopIdentifyBad        // peer_identification with the next byte as the address
)

// FuzzSession drives one ws-room connection through a fuzzer-chosen
// sequence of frames (raw bytes, or well-formed handshake packets the
// fuzzer cannot forge on its own, so that it reaches every stage) and
// steps of the handshake clock, next to a joined observer in the same
// room. Invariants: no panic; the stage never moves backwards; nothing of
// the fuzzed connection reaches the room, and nothing of the room reaches
// it, before its welcome; its packets come in the handshake's order; a
// close is a close frame without status (or 1001), after which nothing is
// sent; after both close, the server holds no room, session or hub state.
//
//	go test -run '^$' -fuzz FuzzSession -fuzztime 1m ./internal/protocol/dcl/
func FuzzSession(f *testing.F) {
	r := newFuzzRig(f)
	seeds := [][]byte{
		{fopIdentify, fopSign, fopUpdate, 3, 1, 2, 3, fopObserver}, // the happy path
		{fopIdentify, fopSign, fopSign, fopIdentify, fopUpdate, 0}, // handshake packets after joining
		{fopStep, 63},                       // silence: stage 1 timeout
		{fopIdentify, fopStep, 19, fopSign}, // just within stage 2
		{fopIdentify, fopStep, 25, fopSign}, // stage 2 timed out
		{fopIdentify, fopBadChain},          // wrong owner
		{fopIdentifyBad, 'x'},               // bad address
		{fopUpdate, 1, 9, fopIdentify},      // update before the handshake
		{fopRaw, 6, 1, 2, 3, 4, 5, 6},       // noise
		{fopRaw, 0, fopIdentify, fopSign},   // empty frame first
		{fopIdentify, fopSign, fopRaw, 2, 0x42, 0x00, fopRaw, 4, 0x12, 2, 8, 5},     // a client's peer_kicked, an rfc4 packet
		{fopIdentify, fopSign, fopRaw, 3, 0xff, 0xff, 0xff, fopObserver},            // noise after joining
		{fopIdentify, fopRaw, 5, 0x1d, 1, 2, 3, 4, fopSign},                         // wrong wire type at stage 2
		{fopObserver, fopIdentify, fopObserver, fopSign, fopObserver, fopStep, 200}, // room traffic around the handshake
		{fopIdentify, fopSign, fopStep, 255, fopUpdate, 255},                        // joined peers have no stage timer
		{fopRaw, 255, 0x0a},        // a truncated frame
		{fopIdentify, fopIdentify}, // identification twice
		{fopSign},                  // a chain first
		{fopIdentify, fopSign, fopUpdate, 1, 0, fopUpdate, 1, 0, fopUpdate, 1, 0}, // a few updates
		{fopIdentifyBad, 0, fopIdentify, fopSign, fopRaw, 1, 0x08, fopStep, 7},    // closed: everything after is ignored
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 512 {
			return
		}
		r.run(t, in)
	})
}

// The rig reaches what the seeds claim: the fuzz target is not stuck
// before the handshake (which would make its invariants vacuous).
func TestFuzzRigReachesEveryStage(t *testing.T) {
	r := newFuzzRig(t)
	for _, c := range []struct {
		name    string
		in      []byte
		stage   stage
		welcome bool
	}{
		{"happy path", []byte{fopIdentify, fopSign, fopUpdate, 3, 1, 2, 3, fopObserver}, stageJoined, true},
		{"silence times out", []byte{fopStep, 21}, stageGone, false},
		{"silence within the timeout", []byte{fopStep, 19}, stageStart, false},
		{"stage 2 just in time", []byte{fopIdentify, fopStep, 19, fopSign}, stageJoined, true},
		{"stage 2 timed out", []byte{fopIdentify, fopStep, 21, fopSign}, stageGone, false},
		{"waiting at stage 2", []byte{fopIdentify}, stageChallenge, false},
		{"wrong owner", []byte{fopIdentify, fopBadChain}, stageGone, false},
		{"noise", []byte{fopRaw, 3, 1, 2, 3}, stageGone, false},
		{"noise after joining", []byte{fopIdentify, fopSign, fopRaw, 3, 0xff, 0xff, 0xff}, stageGone, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, welcomed := r.run(t, c.in)
			if st != c.stage || welcomed != c.welcome {
				t.Fatalf("stage %d welcomed %v, want %d %v", st, welcomed, c.stage, c.welcome)
			}
		})
	}
}

// longLivedPeer is newPeer with a delegation valid for a century of the
// rig's clock, which every step input moves forward.
func longLivedPeer(t testing.TB) *peer {
	t.Helper()
	w, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	eph, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return &peer{wallet: w, login: w.Delegate(eph, time.Now().AddDate(100, 0, 0)), addr: strings.ToLower(w.Address)}
}

func (r *fuzzRig) conn() *recConn {
	r.nextID++
	return &recConn{id: r.nextID}
}

// join puts a session through the real handshake on a recConn.
func (r *fuzzRig) join(t *testing.T, room string, p *peer) (*session, *recConn) {
	t.Helper()
	c := r.conn()
	ss := r.srv.newSession(c, room, "")
	ss.HandleMessage(mustMarshalT(t, identification(p.wallet.Address)), true)
	ss.HandleMessage(mustMarshalT(t, signedChallenge(authchaintest.JSON(p.login.Sign(ss.challenge)))), true)
	if ss.stage != stageJoined {
		t.Fatalf("observer did not join: stage %d", ss.stage)
	}
	return ss, c
}

func mustMarshalT(t *testing.T, p *dclpb.WsPacket) []byte {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *fuzzRig) stageOf(ss *session) stage {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stage
}

// run plays in and returns the stage the fuzzed session was in at the end
// of it (before the final HandleClose) and whether it was ever welcomed.
func (r *fuzzRig) run(t *testing.T, in []byte) (stage, bool) {
	const room = "fuzz"
	obs, oc := r.join(t, room, r.observer)
	c := r.conn()
	ss := r.srv.newSession(c, room, "")
	// The transport calls HandleClose once the socket is gone; a failed
	// input must not leave its sessions to the next one.
	closed := false
	closeBoth := func() {
		if !closed {
			closed = true
			ss.HandleClose(transport.CloseInfo{})
			obs.HandleClose(transport.CloseInfo{})
		}
	}
	defer closeBoth()

	last := r.stageOf(ss)
	for i := 0; i < len(in); i++ {
		op := in[i] % 8
		arg := func() byte {
			if i+1 < len(in) {
				i++
				return in[i]
			}
			return 0
		}
		switch op {
		case fopRaw:
			n := int(arg())
			end := min(i+1+n, len(in))
			frame := in[i+1 : end]
			i = end - 1
			ss.HandleMessage(frame, true)
		case fopIdentify:
			ss.HandleMessage(mustMarshalT(t, identification(r.fuzzed.wallet.Address)), true)
		case fopSign:
			ch := ss.challenge
			if ch == "" {
				ch = "dcl-none"
			}
			ss.HandleMessage(mustMarshalT(t, signedChallenge(authchaintest.JSON(r.fuzzed.login.Sign(ch)))), true)
		case fopBadChain:
			ss.HandleMessage(mustMarshalT(t, signedChallenge(authchaintest.JSON(r.other.SimpleChain(ss.challenge)))), true)
		case fopUpdate:
			n := int(arg())
			end := min(i+1+n, len(in))
			body := append([]byte(nil), in[i+1:end]...)
			i = end - 1
			ss.HandleMessage(mustMarshalT(t, &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{
				PeerUpdateMessage: &dclpb.WsPeerUpdate{Body: body, Unreliable: n&1 == 1}}}), true)
		case fopStep:
			for range int(arg()) % 64 {
				r.clock.advance(testTick)
				r.wheel.Advance()
			}
		case fopObserver:
			obs.HandleMessage(mustMarshalT(t, &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{
				PeerUpdateMessage: &dclpb.WsPeerUpdate{Body: []byte("obs")}}}), true)
		case fopIdentifyBad:
			// 0x and 0 to 44 hex digits: 40 is a valid address of nobody
			// the inputs can sign for. (Non-UTF-8 addresses come as raw
			// frames: the codec here refuses to build them.)
			ss.HandleMessage(mustMarshalT(t, identification("0x"+strings.Repeat("a", int(arg())%45))), true)
		}
		now := r.stageOf(ss)
		if now < last {
			t.Fatalf("op %d (%d): stage went back from %d to %d", i, op, last, now)
		}
		last = now
	}

	welcomed := checkFuzzedPackets(t, ss.alias, c)
	checkObserverPackets(t, ss.alias, oc, c)
	if oc.closed {
		t.Fatal("the observer was closed")
	}

	closeBoth()
	if st := r.srv.Status(); st.Users != 0 || st.Rooms != 0 {
		t.Fatalf("left behind: %+v", st)
	}
	if n := r.srv.Connections(); n != 0 {
		t.Fatalf("%d connections left registered", n)
	}
	if n := r.srv.opts.Hub.Connections(Namespace); n != 0 {
		t.Fatalf("%d hub connections left", n)
	}
	return last, welcomed
}

// checkFuzzedPackets: the fuzzed connection gets, in order, at most one
// challenge, then at most one welcome (only after a challenge), then room
// traffic; a peer_kicked only as its last packet; and a close, if any,
// without status.
func checkFuzzedPackets(t *testing.T, alias uint32, c *recConn) (welcomed bool) {
	t.Helper()
	pkts := c.packets(t)
	challenged := false
	for i, p := range pkts {
		switch {
		case p.GetChallengeMessage() != nil:
			if challenged || welcomed {
				t.Fatalf("packet %d: a second challenge, or one after the welcome", i)
			}
			challenged = true
		case p.GetWelcomeMessage() != nil:
			if !challenged || welcomed {
				t.Fatalf("packet %d: welcome without a challenge, or twice", i)
			}
			if p.GetWelcomeMessage().Alias != alias {
				t.Fatalf("welcome alias %d, want %d", p.GetWelcomeMessage().Alias, alias)
			}
			welcomed = true
		case p.GetPeerKicked() != nil:
			if i != len(pkts)-1 {
				t.Fatalf("packet %d: peer_kicked is not the last packet", i)
			}
		case p.GetPeerUpdateMessage() != nil, p.GetPeerJoinMessage() != nil, p.GetPeerLeaveMessage() != nil:
			if !welcomed {
				t.Fatalf("packet %d: room traffic %v before the welcome", i, p)
			}
			if u := p.GetPeerUpdateMessage(); u != nil && u.FromAlias == alias {
				t.Fatal("its own update echoed back")
			}
		default:
			t.Fatalf("packet %d: unexpected %v", i, p)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed && c.closeCode != 0 && c.closeCode != 1001 {
		t.Fatalf("closed with code %d, want a close frame without status", c.closeCode)
	}
	return welcomed
}

// checkObserverPackets: the room hears of the fuzzed alias only once it
// was welcomed: its join first, then its updates, then at most a leave.
func checkObserverPackets(t *testing.T, alias uint32, oc, fc *recConn) {
	t.Helper()
	welcomed := false
	for _, p := range fc.packets(t) {
		if p.GetWelcomeMessage() != nil {
			welcomed = true
		}
	}
	joined, left := false, false
	for i, p := range oc.packets(t) {
		switch {
		case p.GetChallengeMessage() != nil, p.GetWelcomeMessage() != nil: // its own handshake
		case p.GetPeerJoinMessage() != nil && p.GetPeerJoinMessage().Alias == alias:
			if !welcomed || joined {
				t.Fatalf("observer packet %d: join of a peer that was never welcomed, or twice", i)
			}
			joined = true
		case p.GetPeerUpdateMessage() != nil && p.GetPeerUpdateMessage().FromAlias == alias:
			if !joined || left {
				t.Fatalf("observer packet %d: update of alias %d outside its join..leave", i, alias)
			}
		case p.GetPeerLeaveMessage() != nil && p.GetPeerLeaveMessage().Alias == alias:
			if !joined || left {
				t.Fatalf("observer packet %d: leave without a join", i)
			}
			left = true
		default:
			t.Fatalf("observer packet %d: unexpected %v", i, p)
		}
	}
	if welcomed && !joined {
		t.Fatal("the room never heard the welcomed peer join")
	}
}
