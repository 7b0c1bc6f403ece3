// Package engine is the seam between one node's hub and the rest of a
// cluster. The hub asks the engine to publish, to keep cluster-wide
// presence, occupancy, cached events and signed-in users, and to answer
// cluster-wide queries; the engine calls back into the hub (Local) for
// whatever reaches this node. Protocol code never talks to an engine: it
// talks to the hub.
//
// The in-memory engine (package memory) is the single-node default. Cluster
// engines (NATS, Redis) implement the same interface, and every engine
// passes the same contract suite (package enginetest).
//
// The cluster model: each node is authoritative for its own connections.
// The engine's store keeps every node's contribution to a count or a set
// apart, and changes it together with the aggregate in one atomic step, so
// each cluster-wide transition (channel occupied/vacated, member
// added/removed, user online/offline) is decided once and returned to
// exactly one caller. When a node dies, a healthy node removes its
// contributions the same way and hands the transitions that result to its
// hub (Local.Orphaned), so they too are emitted once.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrFull is returned by PresenceAdd when adding a new user would pass the
// channel's member limit; the check and the add are one atomic step.
var ErrFull = errors.New("engine: presence channel is full")

// Publication is one message for every subscriber of a channel, already
// encoded in its protocol's wire format, so it is encoded once no matter how
// many nodes and connections receive it.
type Publication struct {
	Namespace string // an app id, or a protocol's own space ("damon", "dcl:<room>")
	Channel   string
	Payload   []byte
	Binary    bool
	// ExcludeConn is the key of one connection that must not receive it
	// (the sender of a client event, or the socket_id a REST call names).
	ExcludeConn string
}

// Member is one user in a presence channel.
type Member struct {
	UserID string          `json:"user_id"`
	Info   json.RawMessage `json:"user_info,omitempty"`
}

// ChannelStats is what a cluster-wide channel query returns.
type ChannelStats struct {
	Subscriptions int // connections subscribed, across the cluster
	Users         int // distinct presence users (presence channels only)
}

// OrphanKind names a transition that a departed node left behind.
type OrphanKind uint8

const (
	// OrphanVacated: the channel's last subscribers were on the departed node.
	OrphanVacated OrphanKind = iota + 1
	// OrphanMemberRemoved: Member.UserID's last connection to the presence
	// channel was on the departed node.
	OrphanMemberRemoved
	// OrphanUserOffline: Member.UserID's last signed-in connection was on
	// the departed node (Channel is empty).
	OrphanUserOffline
)

// Orphan is one cluster-wide transition decided while reaping a departed
// node. Exactly one node receives each.
type Orphan struct {
	Kind      OrphanKind
	Namespace string
	Channel   string
	Member    Member
}

// Local is implemented by the hub; the engine calls it for what reaches this node.
type Local interface {
	// DeliverLocal fans p out to this node's subscribers.
	DeliverLocal(p Publication)
	// TerminateLocal ends this node's connections signed in as userID and
	// returns how many it ended.
	TerminateLocal(namespace, userID string) int
	// KickLocal ends this node's connection connKey because another
	// connection took its claim on claimKey (see Claims); it reports
	// whether the connection was here.
	KickLocal(namespace, connKey, claimKey string) bool
	// Orphaned hands this node a transition left behind by a departed
	// node, for the protocol that owns the namespace to emit
	// (channel_vacated, member_removed, peer_leave, ...).
	Orphaned(o Orphan)
	// Fenced tells the node that the cluster dropped it (it was reaped
	// while paused or partitioned, or the store lost its state): every
	// connection must be closed with a reconnect code, since its state in
	// the store is gone. The engine rejoins under a new node id.
	Fenced()
}

// Engine is a cluster's shared state and message bus.
type Engine interface {
	// Start connects the engine; deliveries go to local until ctx ends.
	Start(ctx context.Context, local Local) error
	// Publish sends p to every node with subscribers on p.Channel,
	// this one included.
	Publish(ctx context.Context, p Publication) error
	// Interest tells the engine that this node gained its first (on=true)
	// or lost its last (on=false) subscriber to a channel, so a cluster
	// engine can (un)subscribe the node from that channel's traffic.
	Interest(ctx context.Context, namespace, channel string, on bool) error

	// Occupancy adds delta (+1 or -1) to the cluster-wide subscription
	// count of a channel and returns the new total; 1 after +1 means the
	// channel became occupied, 0 after -1 that it was vacated.
	Occupancy(ctx context.Context, namespace, channel string, delta int) (int, error)
	// Channels returns the occupied channels whose names start with prefix.
	Channels(ctx context.Context, namespace, prefix string) (map[string]ChannelStats, error)
	// Channel returns one channel's stats and whether it is occupied: a
	// direct lookup, where Channels would scan.
	Channel(ctx context.Context, namespace, name string) (ChannelStats, bool, error)

	Presence
	Users
	Cache
	Claims

	// NodeID is this node's identity in the cluster; it changes when the
	// node is fenced and rejoins.
	NodeID() string
	// Ready reports whether the engine can serve (a cluster engine: the
	// node has joined and its store is usable). /readyz follows it.
	Ready() bool
	// Close leaves the cluster at once (a graceful shutdown: the node's
	// state is removed, with its transitions emitted, not left to a reaper)
	// and releases the engine's resources.
	Close() error
}

// Presence keeps presence-channel membership: one member per user id across
// all that user's connections.
type Presence interface {
	// PresenceAdd records connKey as a connection of m.UserID in the
	// channel and reports whether it is the user's first one (member_added).
	// With limit > 0, a new user that would make the channel pass limit
	// members is refused with ErrFull (existing users may always add
	// connections).
	PresenceAdd(ctx context.Context, namespace, channel, connKey string, m Member, limit int) (first bool, err error)
	// PresenceRemove drops connKey and reports whether it was the user's
	// last connection there (member_removed).
	PresenceRemove(ctx context.Context, namespace, channel, connKey, userID string) (last bool, err error)
	// PresenceMembers lists the channel's members, ordered by user id.
	PresenceMembers(ctx context.Context, namespace, channel string) ([]Member, error)
	// PresenceCount is the number of distinct users in the channel.
	PresenceCount(ctx context.Context, namespace, channel string) (int, error)
}

// Users tracks signed-in users (Pusher user authentication) cluster-wide.
type Users interface {
	// UserOnline records connKey as signed in as userID and reports
	// whether the user just came online (first connection).
	UserOnline(ctx context.Context, namespace, userID, connKey string) (first bool, err error)
	// UserOffline drops connKey and reports whether it was the user's last.
	UserOffline(ctx context.Context, namespace, userID, connKey string) (last bool, err error)
	// OnlineUsers returns which of ids are online.
	OnlineUsers(ctx context.Context, namespace string, ids []string) ([]string, error)
	// TerminateUser ends the user's connections on every node.
	TerminateUser(ctx context.Context, namespace, userID string) error
}

// Cache keeps the last event of cache channels.
type Cache interface {
	CacheSet(ctx context.Context, namespace, channel string, payload []byte, ttl time.Duration) error
	// CacheGet returns the cached payload and its remaining lifetime; ok is
	// false on a miss.
	CacheGet(ctx context.Context, namespace, channel string) (payload []byte, ttl time.Duration, ok bool, err error)
}

// Claims keeps "one live connection per key" rules (Decentraland: one
// session per wallet address) across the cluster.
type Claims interface {
	// Claim makes connKey the owner of key and returns the previous owner
	// ("" if none). When there was one, the engine asks the node holding
	// it to end it (Local.KickLocal) before Claim returns or soon after.
	// Concurrent claims are serialized: exactly one ends up the owner.
	Claim(ctx context.Context, namespace, key, connKey string) (prev string, err error)
	// Release drops the claim if connKey still owns it, and reports
	// whether it did.
	Release(ctx context.Context, namespace, key, connKey string) (bool, error)
}

// String names the kind in logs.
func (k OrphanKind) String() string {
	switch k {
	case OrphanVacated:
		return "vacated"
	case OrphanMemberRemoved:
		return "member_removed"
	case OrphanUserOffline:
		return "user_offline"
	}
	return "unknown"
}
