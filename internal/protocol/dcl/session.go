package dcl

import (
	"context"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/connset"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// stage is where a connection is in the handshake (spec section 5).
type stage uint8

const (
	stageStart     stage = iota // waiting for peer_identification
	stageChallenge              // challenge sent, waiting for signed_challenge_for_server
	stageVerifying              // checking the auth chain; no timer runs
	stageJoined                 // in the room: updates are relayed
	stageGone                   // out of the room (kicked or closed)
)

// Reasons counted in switchboard_protocol_errors_total{protocol="dcl"}.
// Every one of them ends only the offending connection.
const (
	errMalformed        = "malformed_packet"    // a frame that is not a WsPacket: close, any stage
	errUnexpected       = "unexpected_packet"   // a handshake stage got another packet type
	errBadAddress       = "bad_address"         // identification address not 0x + 40 hex
	errHandshakeTimeout = "handshake_timeout"   // a handshake stage took longer than its timeout
	errIdleTimeout      = "idle_timeout"        // a joined peer sent nothing, pongs included
	errTooBig           = "frame_too_big"       // inbound frame over max_message_bytes
	errWSProtocol       = "ws_protocol_error"   // RFC 6455 violation or invalid UTF-8 text
	errTokenPeer        = "token_peer_mismatch" // access token issued to another address
	errAuthPrefix       = "auth_"               // + authchain.Reason: the chain was refused
)

// session is one ws-room connection. HandleMessage and HandleClose run on
// the connection's reader goroutine; kicks, the timer and Drain run
// elsewhere, so the state they share is under mu.
type session struct {
	srv    *Server
	conn   transport.Conn
	roomID string
	alias  uint32
	key    string // hub connection key
	peerID string // from the access token, "" without one
	timer  *timewheel.Timer

	// Set by the reader before the session is shared with other goroutines
	// (the registry sees it only once joined).
	address   string // lower case
	addrKey   string
	challenge string

	mu      sync.Mutex
	stage   stage
	closing bool // a close was queued: input is ignored
	// kicked, under outMu: peer_kicked is queued and the close follows;
	// no room traffic may come after it, as none can from the reference's
	// single thread. outMu is taken by every delivery (uncontended but
	// for a kick) and not by the session's own replies: 13 ns more per
	// delivery in BenchmarkRelayFanout (peers=100, 3.3 against 4.6 µs per
	// relay, on fake connections), against the 5-10 µs of the write(2)
	// that each delivery to a real socket is. Both sit among mu's fields
	// so that kicked shares a word with stage and closing: 208 bytes
	// (a size class) here, 216 after room.
	kicked   bool
	outMu    sync.Mutex
	deadline time.Time // under mu: of the current handshake stage; zero when none
	room     *room     // under mu: set when joined

	// From the join until announcementWindow after its catch-up: what
	// the client was told of its room's peers (ledger.go). nil otherwise,
	// which is Deliver's fast path.
	ledger atomic.Pointer[peerLedger]

	// Its place in the front-end's connection set.
	connset.Slot
}

func (s *Server) newSession(c transport.Conn, roomID, peerID string) *session {
	alias := s.nextAlias()
	ss := &session{srv: s, conn: c, roomID: roomID, alias: alias, key: s.connKey(alias), peerID: peerID}
	ss.timer = s.opts.Wheel.NewTimer(ss.onTimer)
	draining := s.conns.Add(ss)
	s.pm.Open.Inc()
	s.pm.Accepted.Inc()
	if draining { // upgraded while Drain was collecting connections
		ss.end("", 1001)
		return ss
	}
	ss.mu.Lock()
	ss.armLocked()
	ss.mu.Unlock()
	return ss
}

// armLocked starts the current handshake stage's timer.
func (ss *session) armLocked() {
	d := ss.srv.opts.HandshakeTimeout
	ss.deadline = ss.srv.opts.Now().Add(d)
	ss.timer.Reset(d)
}

// send queues one packet for this peer only.
func (ss *session) send(p []byte) bool {
	if ss.conn.Send(transport.Binary(p)) != nil {
		return false
	}
	ss.srv.m.out(1, len(p))
	return true
}

// Deliver implements hub.Subscriber: room traffic, shared by all recipients.
func (ss *session) Deliver(m *transport.Message) {
	if isAnnouncement(m.Payload) {
		if l := ss.liveLedger(); l != nil {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.admit(m.Payload) {
				return
			}
		}
	}
	ss.outMu.Lock()
	if !ss.kicked {
		_ = ss.conn.Send(m)
	}
	ss.outMu.Unlock()
}

// DeliverBatch implements hub.BatchSubscriber: a busy room's waiting
// traffic in one write. While the ledger checks announcements, they are
// checked here as Deliver checks them.
func (ss *session) DeliverBatch(ms []*transport.Message) {
	if ss.liveLedger() == nil {
		ss.outMu.Lock()
		if !ss.kicked {
			_ = transport.SendAll(ss.conn, ms)
		}
		ss.outMu.Unlock()
		return
	}
	for _, m := range ms {
		ss.Deliver(m)
	}
}

// Terminate implements hub.Subscriber.
func (ss *session) Terminate() { ss.end("terminated", 0) }

// Transport implements hub.Inspectable (the console's connection list).
func (ss *session) Transport() transport.Conn { return ss.conn }

// fail counts reason and closes the connection with no message, as the
// reference's ws.end(). For a joined peer, the room hears peer_leave now,
// not when the close handshake completes.
func (ss *session) fail(reason string) { ss.end(reason, 0) }

// end closes the connection with a close frame (no status code when code
// is 0) after taking the session out of its room. reason "" counts nothing.
func (ss *session) end(reason string, code uint16) {
	s := ss.srv
	if reason != "" {
		s.pm.Error(reason)
		s.log.Debug("closing connection", "room", ss.roomID, "reason", reason)
	}
	ss.mu.Lock()
	if ss.closing && ss.stage != stageJoined {
		ss.mu.Unlock()
		return
	}
	if ss.stage == stageStart || ss.stage == stageChallenge {
		// In the handshake: not in the registry, and not on its way there
		// (join is reached from stageVerifying only, and identify and
		// verify check closing under ss.mu before they move on). So the
		// room's gate is not needed, and the close does not wait behind
		// another session's join, which holds it over its store round
		// trips.
		ss.closing = true
		ss.stage = stageGone
		ss.deadline = time.Time{}
		ss.mu.Unlock()
		ss.conn.Close(code, "")
		return
	}
	ss.mu.Unlock()
	if ss.leaveUnderRegistry() {
		ss.conn.Close(code, "")
	}
}

// leaveUnderRegistry marks ss gone with its room's gate held and, when it
// was joined, takes it out of its room (its peer_leave goes out). It
// reports false, doing nothing, when ss was already closing and not
// joined: another path ended it. end and HandleClose take this path for a
// session that is joined or verifying, whose join the gate orders it with.
func (ss *session) leaveUnderRegistry() bool {
	s := ss.srv
	defer s.roomGates.lock(ss.roomID)()
	ss.mu.Lock()
	if ss.closing && ss.stage != stageJoined {
		ss.mu.Unlock()
		return false
	}
	ss.closing = true
	r, joined := ss.room, ss.stage == stageJoined
	ss.stage = stageGone
	ss.deadline = time.Time{}
	ss.mu.Unlock()
	if joined {
		s.leaveLocked(ss, r)
	}
	return true
}

// kick marks ss gone and queues peer_kicked{reason} and the close, with
// no room traffic after the one or between the two. A joined session's
// caller then takes it out of its room (kickReplaced).
func (ss *session) kick(reason, metric string) {
	ss.mu.Lock()
	ss.closing = true
	ss.stage = stageGone
	ss.deadline = time.Time{}
	ss.mu.Unlock()
	ss.outMu.Lock()
	ss.kicked = true
	ss.send(encodeKicked(reason))
	ss.conn.Close(0, "")
	ss.outMu.Unlock()
	ss.srv.m.kicks.Inc()
	ss.srv.pm.Error(metric)
}

// onTimer runs on the wheel: a handshake stage's deadline, or a joined
// peer's idle check.
func (ss *session) onTimer() {
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	switch ss.stage {
	case stageStart, stageChallenge:
		// A message may have cleared or moved the deadline while this
		// firing was on its way, and the wheel may fire up to one tick
		// early (a timer set late in a tick): then wait for the rest.
		if ss.deadline.IsZero() {
			ss.mu.Unlock()
			return
		}
		if left := ss.deadline.Sub(ss.srv.opts.Now()); left > 0 {
			ss.timer.Reset(left)
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()
		ss.fail(errHandshakeTimeout)
	case stageJoined:
		ss.liveLedger() // lets it go once its window has passed
		idleTimeout := ss.srv.opts.IdleTimeout
		every := idleTimeout / 3
		// Real time, not opts.Now: LastRead is the transport's stamp.
		idle := time.Since(ss.conn.LastRead())
		switch {
		case idle >= idleTimeout:
			ss.mu.Unlock()
			ss.fail(errIdleTimeout)
			return
		case idle >= every:
			ss.conn.Ping()
			ss.timer.Reset(min(every, idleTimeout-idle))
		default:
			ss.timer.Reset(timewheel.Spread(every) - idle) // not all at once after a storm
		}
		ss.mu.Unlock()
	default:
		ss.mu.Unlock()
	}
}

// HandleMessage implements transport.Handler. Text and binary frames are
// decoded alike, as the reference does.
func (ss *session) HandleMessage(data []byte, _ bool) {
	ss.mu.Lock()
	st, closing := ss.stage, ss.closing
	if closing {
		ss.mu.Unlock()
		return
	}
	if st == stageJoined {
		ss.mu.Unlock()
		ss.handleJoined(data)
		return
	}
	// Every handshake message first clears the stage timer.
	ss.deadline = time.Time{}
	ss.mu.Unlock()
	ss.timer.Stop()

	pkt, err := dclpb.Decode(data, ss.srv.opts.MaxMessageBytes)
	if err != nil {
		ss.failDecode(err)
		return
	}
	switch st {
	case stageStart:
		ss.identify(pkt)
	case stageChallenge:
		ss.verify(pkt)
	}
}

func (ss *session) failDecode(err error) {
	if errors.Is(err, dclpb.ErrFrameTooLarge) {
		ss.fail(errTooBig)
		return
	}
	ss.fail(errMalformed)
}

// identify handles the first packet: peer_identification with an address.
func (ss *session) identify(pkt *dclpb.WsPacket) {
	s := ss.srv
	id := pkt.GetPeerIdentification()
	if id == nil {
		ss.fail(errUnexpected)
		return
	}
	if !authchain.IsAddress(id.Address) {
		ss.fail(errBadAddress)
		return
	}
	ss.address = strings.ToLower(id.Address)
	if ss.peerID != "" && authchain.IsAddress(ss.peerID) && !strings.EqualFold(ss.peerID, ss.address) {
		ss.fail(errTokenPeer)
		return
	}
	if s.clusterRoomSize(ss.roomID) >= s.opts.RoomCapacity {
		ss.kick(ReasonRoomFull, "room_full")
		return
	}
	ss.addrKey = s.addrKey(ss.roomID, ss.address)
	ss.challenge = newChallenge()
	already := s.sessionOf(ss.addrKey) != nil
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	ss.stage = stageChallenge
	ss.armLocked()
	ss.mu.Unlock()
	if !ss.send(encodeChallenge(ss.challenge, already)) {
		ss.fail("")
	}
}

// verify handles the second packet: the auth chain signing the challenge.
func (ss *session) verify(pkt *dclpb.WsPacket) {
	s := ss.srv
	sc := pkt.GetSignedChallengeForServer()
	if sc == nil {
		ss.fail(errUnexpected)
		return
	}
	ss.mu.Lock()
	if ss.closing {
		ss.mu.Unlock()
		return
	}
	ss.stage = stageVerifying
	ss.mu.Unlock()

	ctx, cancel := context.WithTimeout(*s.baseCtx.Load(), s.opts.VerifyTimeout)
	owner, err := authchain.Verify(ctx, []byte(sc.AuthChainJson), ss.address, ss.challenge, s.opts.Now(), authchain.Options{
		Contracts:          s.opts.Contracts,
		AllowOwnerMismatch: s.opts.AllowOwnerMismatch,
	})
	cancel()
	ss.challenge = "" // signed once; an idle peer need not keep it
	if err != nil {
		reason := authchain.Reason(err)
		if errors.Is(err, authchain.ErrEIP1654Unavailable) && s.warnEIP.allow() {
			s.log.Warn("contract-wallet (EIP-1654) auth chain refused: set dcl.eth_rpc_url to accept these wallets",
				"address", ss.address, "room", ss.roomID, "err", err)
		} else {
			s.log.Debug("auth chain refused", "address", ss.address, "room", ss.roomID,
				"remote", ss.conn.RemoteAddr().String(), "reason", reason, "err", err)
		}
		ss.fail(errAuthPrefix + reason)
		return
	}
	// The room knows the peer by the chain owner (lower case), which
	// Verify checked to be the identified address unless mismatches are
	// allowed, as the reference always did.
	if owner != ss.address {
		ss.address, ss.addrKey = owner, s.addrKey(ss.roomID, owner)
	}
	if !s.join(ss) {
		ss.mu.Lock()
		closing := ss.closing
		ss.mu.Unlock()
		if !closing {
			ss.fail("")
		}
		return
	}
}

// handleJoined relays a joined peer's updates and ignores anything else.
func (ss *session) handleJoined(data []byte) {
	s := ss.srv
	s.m.inMessages.Inc()
	s.m.inBytes.Add(float64(len(data)))
	pkt, err := dclpb.Decode(data, s.opts.MaxMessageBytes)
	if err != nil {
		ss.failDecode(err)
		return
	}
	up := pkt.GetPeerUpdateMessage()
	if up == nil {
		// "We accept unknown messages to enable protocol extensibility and
		// compatibility. Do NOT kick the users when they send unknown
		// messages." (reference). Early Godot builds sent raw rfc4 packets.
		s.m.unknown.Inc()
		return
	}
	payload := encodePeerUpdate(ss.alias, up.Body, up.Unreliable)
	// Under mu: a kick or close that takes the peer out of the room waits
	// for this relay, so no update of it can follow its peer_leave.
	ss.mu.Lock()
	if ss.stage != stageJoined || ss.closing {
		ss.mu.Unlock()
		return
	}
	r := ss.room
	s.publish(ss.roomID, payload, ss.key)
	ss.mu.Unlock()
	s.m.sent.Inc()
	s.m.out(int(r.size.Load())-1, len(payload))
}

// HandleClose implements transport.Handler: a joined peer leaves its room.
func (ss *session) HandleClose(info transport.CloseInfo) {
	s := ss.srv
	ss.timer.Stop()
	if info.ByServer {
		switch info.Code {
		case 1009:
			s.pm.Error(errTooBig)
		case 1002, 1007:
			s.pm.Error(errWSProtocol)
		}
	}
	// Only a joined session has registry state to drop under the gate. One
	// that is not cannot become joined meanwhile: join runs on this
	// goroutine, the reader's.
	ss.mu.Lock()
	joined := ss.stage == stageJoined
	if !joined {
		ss.closing = true
		ss.stage = stageGone
	}
	ss.mu.Unlock()
	if joined {
		ss.leaveUnderRegistry()
	}
	s.conns.Remove(ss)
	s.open.Add(-1)
	s.pm.Open.Dec()
	s.log.Debug("connection closed", "room", ss.roomID, "address", ss.address, "remote", ss.conn.RemoteAddr(),
		"code", info.Code, "by_server", info.ByServer, "err", info.Err)
}

// newChallenge is "dcl-" and 128 bits from the CSPRNG in base 36, the
// visible format of the reference's challenges (which used Math.random).
func newChallenge() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	s := new(big.Int).SetBytes(b[:]).Text(36)
	return "dcl-" + strings.Repeat("0", 25-len(s)) + s
}
