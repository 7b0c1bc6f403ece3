// Package engine is the seam between one node's hub and the rest of a
// cluster. The hub asks the engine to publish, to keep cluster-wide
// presence, occupancy, cached events and signed-in users, and to answer
// cluster-wide queries; the engine calls back into the hub (Local) for
// whatever reaches this node. Protocol code never talks to an engine: it
// talks to the hub.
//
// The in-memory engine (package memory) is the single-node default. Cluster
// engines (NATS, Redis) implement the same interface.
package engine

import (
	"context"
	"encoding/json"
	"time"
)

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

// Local is implemented by the hub; the engine calls it for what reaches this node.
type Local interface {
	// DeliverLocal fans p out to this node's subscribers.
	DeliverLocal(p Publication)
	// TerminateLocal ends this node's connections signed in as userID and
	// returns how many it ended.
	TerminateLocal(namespace, userID string) int
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

	// Close releases the engine's resources.
	Close() error
}

// Presence keeps presence-channel membership: one member per user id across
// all that user's connections.
type Presence interface {
	// PresenceAdd records connKey as a connection of m.UserID in the
	// channel and reports whether it is the user's first one (member_added).
	PresenceAdd(ctx context.Context, namespace, channel, connKey string, m Member) (first bool, err error)
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
