package dcl

import (
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// announcementWindow is how long after its catch-up a newly joined session
// checks the peer_join and peer_leave packets it is delivered against what
// it was told. An announcement published before this node's subscription
// to the room took effect can still arrive after it (and after the welcome
// that already counted that peer): the engines deliver within
// milliseconds, and within the 5 s an engine call may take at worst.
const announcementWindow = 2 * engineTimeout

// The first byte of an encoded peer_join and peer_leave packet: the tag of
// their WsPacket oneof field (length-delimited).
var (
	tagPeerJoin  = byte(protowire.EncodeTag(fieldPeerJoin, protowire.BytesType))
	tagPeerLeave = byte(protowire.EncodeTag(fieldPeerLeave, protowire.BytesType))
)

// peerLedger is what a newly joined session's client was told of its
// room's peers: the welcome, then the catch-up and the announcements
// delivered since. On a cluster a peer's join can reach the session twice
// (in the welcome's snapshot of the room and as its peer_join, published
// on another node just before this node subscribed), as can a leave
// (from the catch-up and as its peer_leave). The reference, one process,
// never repeats either, and real clients and the reference's e2e suite
// expect each peer announced once: the ledger keeps one of each.
//
// mu is held while a packet it admits is queued, so the catch-up and a
// delivery racing it reach the client in the ledger's order.
type peerLedger struct {
	mu       sync.Mutex
	welcomed []uint32        // the welcome's peers' aliases
	seen     map[uint32]bool // alias -> present, for what came after the welcome
	until    time.Time       // zero until the catch-up ends
}

func newPeerLedger(welcomed []identity) *peerLedger {
	aliases := make([]uint32, len(welcomed))
	for i, w := range welcomed {
		aliases[i] = w.alias
	}
	return &peerLedger{welcomed: aliases}
}

// state reports whether the client was told alias is present, and whether
// it was told anything of alias at all.
func (l *peerLedger) state(alias uint32) (present, known bool) {
	if p, ok := l.seen[alias]; ok {
		return p, true
	}
	if slices.Contains(l.welcomed, alias) {
		return true, true
	}
	return false, false
}

func (l *peerLedger) set(alias uint32, present bool) {
	if l.seen == nil {
		l.seen = make(map[uint32]bool)
	}
	l.seen[alias] = present
}

// expired reports whether the window has passed. l.mu is held.
func (l *peerLedger) expired(now time.Time) bool {
	return !l.until.IsZero() && now.After(l.until)
}

// admit reports whether a delivered packet goes to the client, and
// records it: a peer_join of a peer the client knows of (present, or gone
// already: a late copy) and a peer_leave of a peer it does not know as
// present are dropped. Other packets pass. l.mu is held.
func (l *peerLedger) admit(p []byte) bool {
	join := p[0] == tagPeerJoin
	alias, ok := announcedAlias(p)
	if !ok {
		return true
	}
	present, known := l.state(alias)
	if join {
		if known {
			return false
		}
		l.set(alias, true)
		return true
	}
	l.set(alias, false)
	return present
}

// isAnnouncement reports whether p is a peer_join or peer_leave packet.
func isAnnouncement(p []byte) bool {
	return len(p) > 0 && (p[0] == tagPeerJoin || p[0] == tagPeerLeave)
}

// announcedAlias reads the alias (field 1) of an encoded peer_join or
// peer_leave packet; 0 when absent, as proto3 omits it.
func announcedAlias(p []byte) (uint32, bool) {
	_, _, n := protowire.ConsumeTag(p)
	if n < 0 {
		return 0, false
	}
	inner, m := protowire.ConsumeBytes(p[n:])
	if m < 0 {
		return 0, false
	}
	for len(inner) > 0 {
		num, typ, k := protowire.ConsumeTag(inner)
		if k < 0 {
			return 0, false
		}
		inner = inner[k:]
		if num == 1 && typ == protowire.VarintType {
			v, k := protowire.ConsumeVarint(inner)
			if k < 0 {
				return 0, false
			}
			return uint32(v), true
		}
		k = protowire.ConsumeFieldValue(num, typ, inner)
		if k < 0 {
			return 0, false
		}
		inner = inner[k:]
	}
	return 0, true
}

// liveLedger is ss's ledger while its window lasts. Past it, it lets the
// ledger go and returns nil: Deliver's and the joined timer's check.
func (ss *session) liveLedger() *peerLedger {
	l := ss.ledger.Load()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	expired := l.expired(ss.srv.opts.Now())
	l.mu.Unlock()
	if expired {
		ss.ledger.CompareAndSwap(l, nil)
		return nil
	}
	return l
}

// catchUpLedger sends the difference between the room now (members,
// without ss) and what ss's client was told, records it, and opens the
// window's clock.
func (ss *session) catchUpLedger(l *peerLedger, now []identity) {
	start := ss.srv.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	here := make(map[uint32]bool, len(now))
	for _, p := range now {
		here[p.alias] = true
		if _, known := l.state(p.alias); !known {
			l.set(p.alias, true)
			ss.send(encodePeerJoin(p.alias, p.address))
		}
	}
	leave := func(alias uint32) {
		if present, _ := l.state(alias); present && !here[alias] {
			l.set(alias, false)
			ss.send(encodePeerLeave(alias))
		}
	}
	for _, alias := range l.welcomed {
		leave(alias)
	}
	for alias := range l.seen {
		leave(alias)
	}
	l.until = start.Add(announcementWindow)
}

// startClock opens the window's clock without a catch-up (the room could
// not be read).
func (l *peerLedger) startClock(now time.Time) {
	l.mu.Lock()
	l.until = now.Add(announcementWindow)
	l.mu.Unlock()
}
