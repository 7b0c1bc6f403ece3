// Package natsengine is the cluster engine on NATS: core NATS carries
// publications and control messages between nodes, JetStream keeps the
// cluster's state (a key-value bucket, memory storage, one revision per
// key) and cached events (a stream keeping the last message per channel).
//
// Construct it with New(Options{...}), Start it with the hub, wait for
// Ready (or WaitReady). Embedded mode runs nats-server in this process,
// routed to the other nodes; external mode connects to a NATS cluster
// (>= 2.11, JetStream on).
//
// # Messages
//
// One NATS subscription per channel with local interest, subject
// sb.m.<ns>.<channel> (base64url tokens), so a publication reaches only
// nodes with subscribers. Publish delivers locally first and NoEcho drops
// our own copy. Interest(on) returns once the other nodes' servers route
// the channel to us (see interestBarrier).
//
// # Exact
//
// Decided by one compare-and-set write in the replicated store, so exactly
// one caller (or one reaper, through Local.Orphaned) sees each: channel
// occupied/vacated, member added/removed, user online/offline, claims, the
// presence member limit (checked in the same write as the add), the
// cache's last writer. A node writes only when its own count for a key
// crosses 0<->1, the only moments an aggregate transition can happen.
//
// # Eventual
//
// Subscription counts between a node's crossings (flushed each Heartbeat),
// delivery (at most once, in order per publisher and channel), cleanup of a
// dead node (NodeTimeout, then one scan), the cache's remaining TTL
// (computed from the store's clock). A node that dies before its hub emits
// a transition it was handed loses that event.
//
// # Failure
//
// Each node rewrites its record every Heartbeat; silence past NodeTimeout
// (timed on each observer's own clock) gets a node reaped by one node
// that has beaten successfully for the whole window. A node that finds
// its record gone was reaped while paused: it calls Local.Fenced and
// rejoins under a new NodeID, never writing its old state back. Close
// removes the node's state and record at once.
package natsengine
