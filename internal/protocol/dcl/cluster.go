package dcl

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// A room across a cluster (docs/decentraland.md, "Across a cluster"):
//
//   - membership is presence on (Namespace, roomID), one member per alias
//     with the address in its info, so the welcome lists peers on every
//     node and the capacity is one atomic, cluster-wide limit;
//   - "one live session per address" is a claim on the address key: the
//     node that takes it over kicks the previous owner wherever it is
//     (engine -> hub.KickLocal -> session.Kick);
//   - a node that dies leaves presence members behind; the engine reaps
//     them and hands each to one surviving node (Server.Orphaned), which
//     tells the room with peer_leave.
//
// Every engine call below is made with the room's gate held (gate.go):
// the joins and leaves of one room on one node stay in one order, those
// of different rooms do not wait for each other, and the relay of updates
// takes no gate.

// engineTimeout bounds one engine call on the join and leave paths.
const engineTimeout = 5 * time.Second

// maxAliasRetries bounds the alias changes on a join when the room
// already has a member with the alias (another node handed out the same
// number): with random bases this is about one join in 30 million.
const maxAliasRetries = 3

func engineCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), engineTimeout)
}

// randomAliasBase is where this process starts counting aliases: a random
// value below 2^31, so a node counts 2^31 connections before its counter
// wraps (0 is skipped), and two nodes' sequences are unrelated.
func randomAliasBase() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) >> 1
}

// randomKeySuffix makes this process's hub connection keys unique across
// the cluster, whatever the aliases: claims and presence name connections
// by key.
func randomKeySuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// memberInfo is a room member's presence info.
type memberInfo struct {
	Address string `json:"address"`
}

func (ss *session) member() engine.Member {
	info, _ := json.Marshal(memberInfo{Address: ss.address})
	return engine.Member{UserID: aliasKey(ss.alias), Info: info}
}

// errAliasTaken: the room already had a member with the session's alias.
var errAliasTaken = errors.New("dcl: alias taken in the room")

// enterRoom adds ss to its room's cluster-wide membership with the
// room's capacity as the atomic limit (engine.ErrFull when full). members
// is the room read just before: should another node's peer hold the
// session's alias there, the session takes its next alias first. Should
// one take it between that read and the add (the add then finds the
// member), the session leaves it and tries again with its next alias; the
// add has then also replaced that member's info (its address) in the
// store, which later welcomes show until that peer leaves: a clash of two
// random counters within one store round trip, far rarer than the clash
// itself. The caller holds the room's gate; ss is not yet connected to
// the hub.
func (s *Server) enterRoom(ss *session, members []identity) error {
	for range maxAliasRetries {
		if !slices.ContainsFunc(members, func(m identity) bool { return m.alias == ss.alias }) {
			break
		}
		s.log.Warn("alias already in the room (from another node): taking another", "room", ss.roomID, "alias", ss.alias)
		s.renameAlias(ss)
	}
	for range maxAliasRetries {
		ctx, cancel := engineCtx()
		first, err := s.opts.Hub.PresenceJoinLimit(ctx, Namespace, ss.roomID, ss.key, ss.member(), s.opts.RoomCapacity)
		cancel()
		if err != nil {
			return err
		}
		if first {
			return nil
		}
		s.log.Warn("alias already in the room (from another node): taking another", "room", ss.roomID, "alias", ss.alias)
		ctx, cancel = engineCtx()
		_, _ = s.opts.Hub.PresenceLeave(ctx, Namespace, ss.roomID, ss.key, aliasKey(ss.alias))
		cancel()
		s.renameAlias(ss)
	}
	return errAliasTaken
}

// renameAlias gives a session that is not yet joined its next alias.
func (s *Server) renameAlias(ss *session) {
	alias := s.nextAlias()
	ss.mu.Lock()
	ss.alias, ss.key = alias, s.connKey(alias)
	ss.mu.Unlock()
}

// roomMembers lists the room's members on every node.
func (s *Server) roomMembers(roomID string) ([]identity, error) {
	ctx, cancel := engineCtx()
	defer cancel()
	ms, err := s.opts.Hub.PresenceMembers(ctx, Namespace, roomID)
	if err != nil {
		return nil, err
	}
	out := make([]identity, 0, len(ms))
	for _, m := range ms {
		a, err := strconv.ParseUint(m.UserID, 10, 32)
		if err != nil {
			continue
		}
		var info memberInfo
		if json.Unmarshal(m.Info, &info) != nil {
			continue
		}
		out = append(out, identity{uint32(a), info.Address})
	}
	return out, nil
}

// othersOf is members without ss and any session of its own address (one
// it replaced, which its node is still kicking: its peer_leave follows).
func othersOf(members []identity, ss *session) []identity {
	out := make([]identity, 0, len(members))
	for _, m := range members {
		if m.alias != ss.alias && m.address != ss.address {
			out = append(out, m)
		}
	}
	return out
}

// roomPeers lists ss's room's other peers on every node.
func (s *Server) roomPeers(ss *session) ([]identity, error) {
	ms, err := s.roomMembers(ss.roomID)
	if err != nil {
		return nil, err
	}
	return othersOf(ms, ss), nil
}

// catchUp closes the gap between the welcome (a snapshot of the room) and
// the subscription to the room's traffic: a peer that joined or left on
// another node in between announced it before this node heard the room.
// Members that arrived get peer_join, members that went get peer_leave;
// ss's ledger drops a copy of either that arrives later, or arrived since
// the subscription.
func (s *Server) catchUp(ss *session) {
	l := ss.ledger.Load()
	now, err := s.roomPeers(ss)
	if err != nil {
		s.log.Warn("room members after join", "room", ss.roomID, "err", err)
		l.startClock(s.opts.Now())
		return
	}
	ss.catchUpLedger(l, now)
}

// claimAddress makes ss the one session of its address key cluster-wide;
// the engine kicks a previous owner on its node. A previous owner on this
// node was kicked (and its claim released) before, by the local registry.
func (s *Server) claimAddress(ss *session) error {
	ctx, cancel := engineCtx()
	defer cancel()
	prev, err := s.opts.Hub.Claim(ctx, Namespace, ss.addrKey, ss.key)
	if prev != "" {
		s.log.Debug("address joined again: its previous session is kicked on its node", "address", ss.address, "prev", prev, "room", ss.roomID, "alias", ss.alias)
	}
	return err
}

// leaveCluster drops a leaving session's presence and claim.
func (s *Server) leaveCluster(ss *session) {
	ctx, cancel := engineCtx()
	defer cancel()
	if _, err := s.opts.Hub.PresenceLeave(ctx, Namespace, ss.roomID, ss.key, aliasKey(ss.alias)); err != nil {
		s.log.Warn("room presence leave failed", "room", ss.roomID, "alias", ss.alias, "err", err)
	}
	if _, err := s.opts.Hub.Release(ctx, Namespace, ss.addrKey, ss.key); err != nil {
		s.log.Warn("address claim release failed", "room", ss.roomID, "alias", ss.alias, "err", err)
	}
}

// Kick implements hub.Kickable: a session on another node (or, rarely,
// this one) took this session's address claim. It is kicked as a local
// duplicate login is: peer_kicked with the reference's reason, the close,
// and peer_leave to its room. The engine may call Kick while this node
// holds the room's gate (a claim taken here), so the kick runs on its own
// goroutine.
func (ss *session) Kick(string) {
	go func() {
		ss.srv.log.Debug("address claimed by a newer session: kicking this one", "address", ss.address, "room", ss.roomID, "alias", ss.alias)
		ss.srv.kickReplaced(ss)
	}()
}

// Orphaned implements hub.Owner: a room member whose node died is
// announced to the room as gone.
func (s *Server) Orphaned(o engine.Orphan) {
	if o.Kind != engine.OrphanMemberRemoved {
		return
	}
	a, err := strconv.ParseUint(o.Member.UserID, 10, 32)
	if err != nil {
		return
	}
	s.publish(o.Channel, encodePeerLeave(uint32(a)), "")
	s.log.Info("peer of a departed node left", "room", o.Channel, "alias", a)
}

// clusterRoomSize is the number of joined peers in a room on every node
// (the early capacity check; join checks again, atomically). A store
// error counts as 0: the join's atomic limit still holds.
func (s *Server) clusterRoomSize(roomID string) int {
	ctx, cancel := engineCtx()
	defer cancel()
	n, err := s.opts.Hub.PresenceCount(ctx, Namespace, roomID)
	if err != nil {
		s.log.Warn("room size failed", "room", roomID, "err", err)
		return 0
	}
	return n
}
