package redisengine

import (
	"context"
	"errors"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// outcomeUnknown reports whether a failed write may still have run in
// Redis (the reply was lost), as opposed to one Redis refused.
func outcomeUnknown(err error) bool {
	var re *rueidis.RedisError
	return !errors.As(err, &re) && !errors.Is(err, errFenced)
}

// retryHeld removes presence and signed-in state that this node no longer
// backs with a connection but may still hold in Redis, because a remove
// failed or an add's reply was lost. The remove scripts are idempotent, so
// a retry after a remove that did run is a no-op. A transition it decides
// never reached the hub as a return value, so it goes to Local.Orphaned.
func (e *Engine) retryHeld(ctx context.Context) {
	for _, k := range e.presence.takePending() {
		ent := e.presence.acquire(k)
		if ent.held && len(ent.conns) == 0 {
			id := e.NodeID()
			v, err := e.exec(ctx, "presence_remove", e.s.presenceRemove,
				[]string{e.k.presence(k.ns, k.name), e.k.presenceNodes(k.ns, k.name), e.k.presenceCount(k.ns, k.name), e.k.index(id, idxPresence)},
				[]string{id, k.user, indexMember(k.ns, k.name, k.user)}).AsInt64()
			if err == nil || errors.Is(err, errFenced) {
				ent.held = false
			}
			if err == nil && v == 1 {
				e.local.Orphaned(engine.Orphan{Kind: engine.OrphanMemberRemoved, Namespace: k.ns, Channel: k.name, Member: engine.Member{UserID: k.user}})
			}
		}
		e.presence.release(k, ent)
	}
	for _, k := range e.users.takePending() {
		ent := e.users.acquire(k)
		if ent.held && len(ent.conns) == 0 {
			id := e.NodeID()
			v, err := e.exec(ctx, "user_offline", e.s.userOffline,
				[]string{e.k.user(k.ns, k.user), e.k.index(id, idxUsers)},
				[]string{id, indexMember(k.ns, k.user)}).AsInt64()
			if err == nil || errors.Is(err, errFenced) {
				ent.held = false
			}
			if err == nil && v == 1 {
				e.local.Orphaned(engine.Orphan{Kind: engine.OrphanUserOffline, Namespace: k.ns, Member: engine.Member{UserID: k.user}})
			}
		}
		e.users.release(k, ent)
	}
}
