package dcl

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
)

// The registry: this node's rooms and joined sessions (Server.rooms,
// Server.sessions), kept in step with the room's cluster-wide state
// (cluster.go).

// nextAlias hands out the next alias: per process, counting up from a
// random base, never reused (0 is skipped should the counter ever wrap).
func (s *Server) nextAlias() uint32 {
	for {
		if a := s.aliases.Add(1); a != 0 {
			return a
		}
	}
}

// addrKey is the key of the one-session-per-address rule.
func (s *Server) addrKey(roomID, address string) string {
	if s.opts.SessionPerRoom {
		return roomID + "\x00" + address
	}
	return address
}

// roomSize is the number of joined peers in a room.
func (s *Server) roomSize(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[id]; r != nil {
		return len(r.members)
	}
	return 0
}

// publish sends a pre-encoded packet to the room's subscribers on every
// node, except the connection keyed exclude.
func (s *Server) publish(roomID string, payload []byte, exclude string) {
	err := s.opts.Hub.Publish(context.Background(), engine.Publication{
		Namespace: Namespace, Channel: roomID, Payload: payload, Binary: true, ExcludeConn: exclude,
	})
	if err != nil {
		s.log.Warn("publish to room failed", "room", roomID, "err", err)
	}
}

// slowJoin is the join time past which join logs a warning.
const slowJoin = time.Second

// join adds a verified session to its room (spec section 6), atomically
// with respect to every other join and leave of the room on this node
// (the room's gate) and every other join of the address on this node
// (the address's gate): kick the address's previous session here (its
// room gets peer_leave first), claim the address cluster-wide (a previous
// session on another node is kicked there), enter the room's cluster-wide
// membership within its capacity, welcome the peer with the room's other
// peers on every node, subscribe it to the room's traffic, and tell the
// others with peer_join. It reports false when the session could not join
// (closed meanwhile, the room filled up, or the cluster's store failed).
func (s *Server) join(ss *session) bool {
	// Address, then room, and never two rooms: the previous session is
	// kicked through its own room's gate before this one's is taken.
	defer s.addrGates.lock(ss.addrKey)()
	if old := s.sessionOf(ss.addrKey); old != nil {
		s.log.Debug("address joined again: kicking its previous session", "address", ss.address,
			"old_room", old.roomID, "old_alias", old.alias, "room", ss.roomID, "alias", ss.alias)
		s.kickReplaced(old)
	}
	defer s.roomGates.lock(ss.roomID)()
	start := time.Now()
	defer func() {
		// Every join and leave of the room on this node waits meanwhile:
		// a slow store shows here first.
		if took := time.Since(start); took > slowJoin {
			s.log.Warn("room join held the room", "room", ss.roomID, "took", took)
		}
	}()
	ss.mu.Lock()
	closing := ss.closing
	ss.mu.Unlock()
	if closing || s.conns.Draining() {
		return false
	}
	// The room as it is before the join: the alias check and the welcome
	// (catchUp below sends what changes until the subscription).
	members, err := s.roomMembers(ss.roomID)
	if err != nil {
		s.log.Warn("room members failed", "room", ss.roomID, "err", err)
		return false
	}
	if err := s.enterRoom(ss, members); err != nil {
		if errors.Is(err, engine.ErrFull) {
			// Filled up (on any node) between identification and now.
			ss.kick(ReasonRoomFull, "room_full")
		} else {
			s.log.Warn("room membership failed", "room", ss.roomID, "err", err)
		}
		return false
	}
	// Connected before the claim: a newer login elsewhere that takes the
	// claim right after finds this session to kick.
	s.opts.Hub.Connect(Namespace, ss.key, ss)
	if err := s.claimAddress(ss); err != nil {
		s.log.Warn("address claim failed", "room", ss.roomID, "err", err)
		s.opts.Hub.Disconnect(Namespace, ss.key)
		s.leaveCluster(ss)
		return false
	}
	peers := othersOf(members, ss)
	s.mu.Lock()
	r := s.rooms[ss.roomID]
	if r == nil {
		r = &room{id: ss.roomID, members: map[*session]struct{}{}}
		s.rooms[ss.roomID] = r
		s.m.rooms.Set(float64(len(s.rooms)))
	}
	r.members[ss] = struct{}{}
	r.size.Store(int32(len(r.members)))
	s.sessionsMu.Lock()
	s.sessions[ss.addrKey] = ss
	s.sessionsMu.Unlock()
	s.m.connections.Set(float64(len(s.sessions)))
	s.mu.Unlock()
	ss.mu.Lock()
	ss.stage, ss.room = stageJoined, r
	if !ss.closing {
		// The joined timer replaces the handshake's deadline before the
		// ledger exists. Its first firing also lets the ledger go once
		// its window has passed. Held until the first keep-alive check
		// (30 s) instead, with the welcome's identities, the ledgers of
		// 2,000 peers in rooms of 100 were half the live heap 30 s after
		// their joins (6.6 of 12.9 MB in a heap profile) and the RSS per
		// idle peer in dcl-2k-20rooms was 13.4 KB against 6.9 KB now.
		ss.timer.Reset(min(timewheel.Spread(s.opts.IdleTimeout/3), announcementWindow+time.Second))
	}
	ss.mu.Unlock()

	// Welcome first; then subscribe, then announce. Subscribing before the
	// peer_join goes out means that a peer who saw the join and answers
	// at once (the relay takes no gate) is heard by the newcomer.
	// Nothing can reach the newcomer before its welcome, which is queued.
	ss.send(encodeWelcome(ss.alias, slices.Clone(peers)))
	ss.ledger.Store(newPeerLedger(peers))
	if _, err := s.opts.Hub.Subscribe(context.Background(), Namespace, r.id, ss); err != nil {
		s.log.Warn("room subscription failed", "room", r.id, "err", err)
	}
	s.catchUp(ss)
	joinMsg := encodePeerJoin(ss.alias, ss.address)
	s.publish(r.id, joinMsg, ss.key)
	s.m.out(len(peers), len(joinMsg))
	s.m.connectionsTotal.Inc()
	return true
}

// sessionOf is the joined session of an address key on this node, if
// any (a join kicks it; the challenge's already_connected hint asks).
func (s *Server) sessionOf(addrKey string) *session {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	return s.sessions[addrKey]
}

// leaveLocked takes a joined session out of its room: it stops relaying
// for it, unsubscribes it, deletes the room when empty, and otherwise tells
// the rest with peer_leave. The caller holds the room's gate and has moved
// ss out of stageJoined under ss.mu, so no update of ss can follow its
// peer_leave.
func (s *Server) leaveLocked(ss *session, r *room) {
	s.mu.Lock()
	delete(r.members, ss)
	left := len(r.members)
	r.size.Store(int32(left))
	if s.sessions[ss.addrKey] == ss {
		s.sessionsMu.Lock()
		delete(s.sessions, ss.addrKey)
		s.sessionsMu.Unlock()
	}
	if left == 0 && s.rooms[r.id] == r {
		delete(s.rooms, r.id)
	}
	s.m.rooms.Set(float64(len(s.rooms)))
	s.m.connections.Set(float64(len(s.sessions)))
	s.mu.Unlock()
	if _, _, err := s.opts.Hub.Unsubscribe(context.Background(), Namespace, r.id, ss); err != nil {
		s.log.Warn("room unsubscribe failed", "room", r.id, "err", err)
	}
	s.opts.Hub.Disconnect(Namespace, ss.key)
	s.leaveCluster(ss)
	// The room may have peers on other nodes even when none is left here.
	leave := encodePeerLeave(ss.alias)
	s.publish(r.id, leave, "")
	s.m.out(left, len(leave))
}

// kickReplaced kicks a joined session whose address joined again, here or
// on another node: peer_kicked, the close, and its peer_leave to the room,
// under the room's gate. A session gone meanwhile, or kicked already, is
// left alone. No other path can change a joined session's stage while the
// gate is held, so the check and the kick need not share one ss.mu.
func (s *Server) kickReplaced(ss *session) {
	defer s.roomGates.lock(ss.roomID)()
	ss.mu.Lock()
	r, joined := ss.room, ss.stage == stageJoined && !ss.closing
	ss.mu.Unlock()
	if !joined {
		return
	}
	ss.kick(ReasonRoomFull, "replaced")
	s.leaveLocked(ss, r)
}
