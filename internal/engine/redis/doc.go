// Package redisengine is the Redis cluster engine: nodes share one Redis
// (a single server, or a Sentinel-managed primary; not Redis Cluster, since
// one script touches a channel's keys and the node's index together) for
// state, and its pub/sub for messages.
//
// Construct with New(Options{URL: ..., NodeName: ...}) and Start it with
// the hub as engine.Local; Close leaves the cluster.
//
// # Messages
//
// One pub/sub channel per (namespace, channel) that has local interest,
// all on one dedicated connection per node: a PUBLISH costs one message per
// node with subscribers, never one per node in the cluster. Publish
// delivers to local subscribers first and drops its own echo by the origin
// node id in the envelope. Interest(on) returns once Redis confirmed the
// SUBSCRIBE. After a reconnect every channel is subscribed again; an idle
// connection is probed with PING every Heartbeat, so a silently dead one
// is replaced (centrifugo#1189).
//
// # State
//
// Every change is a Lua script that updates this node's contribution, the
// aggregate and the node's index of what it contributed in one atomic step
// (keys in keys.go, scripts in lua/). Presence and signed-in users are
// counted per node in memory first, so Redis is written only when this
// node's count for a member or user crosses 0<->1; occupancy is written on
// every call, since its result is the cluster's total.
//
// # Membership
//
// Each node has a record in a sorted set scored with Redis's own clock,
// refreshed every Heartbeat only if it still exists. A node silent past
// NodeTimeout is reaped by a healthy node (one whose own heartbeats have
// succeeded for a whole NodeTimeout) under a lock: its record goes first,
// so Redis refuses its writes from then on, then the same scripts undo its
// index entries, and each transition they decide reaches that reaper's
// Local.Orphaned. A node that finds its record gone (reaped while paused
// or cut off, or Redis lost its data) calls Local.Fenced, forgets its
// local counts and rejoins under a new id; it never writes its old state
// back. Close removes the node's state and record at once, handing the
// transitions to its own Local.Orphaned.
//
// # Exact and eventual
//
// Exact: channel occupied/vacated, member added/removed, user
// online/offline (each decided once, by one script, for one caller,
// including those decided while reaping), the presence member limit,
// claims (one owner; the previous one kicked on its node) and the cache's
// last writer. If the node that decided a transition crashes before its
// hub emits it, that event is lost.
//
// Eventual: delivery (at most once, in order per publisher; publications
// sent while a node's pub/sub connection is down are lost to it), a dead
// node's cleanup (within NodeTimeout plus a Heartbeat or two), kicks and
// terminations on other nodes (one pub/sub hop), and query results
// (Channels reads the occupied set, then the counts).
//
// Failed writes: a presence or signed-in removal that fails (or an add
// whose reply was lost) is retried every Heartbeat while Redis answers;
// the transition it decides goes to Local.Orphaned. An occupancy -1 that
// fails is not retried (a count is not idempotent: the first try may have
// run); that count stays until the node leaves or is reaped.
package redisengine
