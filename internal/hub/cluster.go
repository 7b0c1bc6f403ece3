package hub

import (
	"context"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// What the cluster decides on a node's behalf reaches the hub through the
// engine.Local methods below; the hub hands each to the protocol that owns
// the namespace or to the connection concerned.

// Owner is the protocol front-end of a namespace, told of transitions
// that a departed node left behind (it emits channel_vacated,
// member_removed, peer_leave...).
type Owner interface {
	Orphaned(o engine.Orphan)
}

// Kickable is a subscriber that can tell its client why it is being
// replaced by a newer connection holding the same claim (Decentraland's
// peer_kicked). Others are terminated. Kick may run on the claiming
// connection's goroutine, inside its Claim call (the memory engine, or a
// claim taken on this node), so it must not block or take the protocol's
// own locks: hand the work to another goroutine.
type Kickable interface {
	Kick(claimKey string)
}

// Reconnectable is a subscriber that can ask its client to reconnect
// (Pusher 4200), used when the cluster fences this node. Others are
// terminated.
type Reconnectable interface {
	Reconnect()
}

// Own registers the front-end that owns namespace ns.
func (h *Hub) Own(ns string, o Owner) {
	h.mu.Lock()
	if h.owners == nil {
		h.owners = map[string]Owner{}
	}
	h.owners[ns] = o
	h.mu.Unlock()
}

// Orphaned implements engine.Local.
func (h *Hub) Orphaned(o engine.Orphan) {
	if o.Channel == connectionsChannel {
		return // the connection quota's count emptied (quota.go)
	}
	h.mu.RLock()
	owner := h.owners[o.Namespace]
	h.mu.RUnlock()
	if owner != nil {
		owner.Orphaned(o)
	}
}

// KickLocal implements engine.Local.
func (h *Hub) KickLocal(ns, connKey, claimKey string) bool {
	sp := h.space(ns, false)
	if sp == nil {
		return false
	}
	sp.mu.RLock()
	s := sp.conns[connKey]
	sp.mu.RUnlock()
	if s == nil {
		return false
	}
	if k, ok := s.(Kickable); ok {
		k.Kick(claimKey)
	} else {
		s.Terminate()
	}
	return true
}

// Fenced implements engine.Local: every connection of this node is asked
// to reconnect (to a node whose state the cluster still holds).
func (h *Hub) Fenced() {
	h.mu.RLock()
	spaces := make([]*space, 0, len(h.spaces))
	for _, sp := range h.spaces {
		spaces = append(spaces, sp)
	}
	h.mu.RUnlock()
	for _, sp := range spaces {
		sp.mu.RLock()
		victims := make([]Subscriber, 0, len(sp.conns))
		for _, s := range sp.conns {
			victims = append(victims, s)
		}
		sp.mu.RUnlock()
		for _, s := range victims {
			if r, ok := s.(Reconnectable); ok {
				r.Reconnect()
			} else {
				s.Terminate()
			}
		}
	}
}

// Ready reports whether the engine can serve.
func (h *Hub) Ready() bool { return h.eng.Ready() }

// NodeID is this node's cluster identity.
func (h *Hub) NodeID() string { return h.eng.NodeID() }

// Claim makes connKey the one owner of key cluster-wide and returns the
// previous owner, whom the engine asks its node to kick.
func (h *Hub) Claim(ctx context.Context, ns, key, connKey string) (string, error) {
	return h.eng.Claim(ctx, ns, key, connKey)
}

// Release drops connKey's claim on key if it still holds it.
func (h *Hub) Release(ctx context.Context, ns, key, connKey string) (bool, error) {
	return h.eng.Release(ctx, ns, key, connKey)
}

// PresenceJoinLimit is PresenceJoin with an atomic member limit: a new
// user past limit members gets engine.ErrFull.
func (h *Hub) PresenceJoinLimit(ctx context.Context, ns, name, connKey string, m engine.Member, limit int) (bool, error) {
	return h.eng.PresenceAdd(ctx, ns, name, connKey, m, limit)
}

// KV is the engine's cluster-wide short-lived key-value store, when the
// engine has one (every engine Switchboard ships does).
func (h *Hub) KV() (engine.KV, bool) {
	kv, ok := h.eng.(engine.KV)
	return kv, ok
}
