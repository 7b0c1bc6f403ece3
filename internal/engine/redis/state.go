package redisengine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// Occupancy implements engine.Engine: every call is one script, since the
// returned total must be the cluster's.
func (e *Engine) Occupancy(ctx context.Context, ns, ch string, delta int) (int, error) {
	id := e.NodeID()
	v, err := e.exec(ctx, "occupancy", e.s.occupancy,
		[]string{e.k.occupancy(ns, ch), e.k.occupied(ns), e.k.nodes(), e.k.index(id, idxOccupancy)},
		[]string{id, strconv.Itoa(delta), ch, indexMember(ns, ch)}).AsIntSlice()
	if err != nil {
		return 0, err
	}
	if len(v) != 2 {
		return 0, errEnvelope
	}
	return int(v[0]), nil
}

// Channels implements engine.Engine: a lexical range over the namespace's
// occupied set, then the counts of those channels in one pipeline.
func (e *Engine) Channels(ctx context.Context, ns, prefix string) (map[string]engine.ChannelStats, error) {
	lo, hi := "-", "+"
	if prefix != "" {
		// Channel names are UTF-8, which never holds the byte 0xff.
		lo, hi = "["+prefix, "("+prefix+"\xff"
	}
	names, err := e.do(ctx, "channels", e.client.B().Zrangebylex().Key(e.k.occupied(ns)).Min(lo).Max(hi).Build()).AsStrSlice()
	if err != nil {
		return nil, err
	}
	out := make(map[string]engine.ChannelStats, len(names))
	if len(names) == 0 {
		return out, nil
	}
	cmds := make(rueidis.Commands, 0, 2*len(names))
	for _, name := range names {
		cmds = append(cmds,
			e.client.B().Hget().Key(e.k.occupancy(ns, name)).Field("_t").Build(),
			e.client.B().Hlen().Key(e.k.presence(ns, name)).Build())
	}
	res := e.client.DoMulti(ctx, cmds...)
	for i, name := range names {
		st, ok, err := channelStats(res[2*i], res[2*i+1])
		if err != nil {
			return nil, err
		}
		if ok {
			out[name] = st
		}
	}
	return out, nil
}

// Channel implements engine.Engine.
func (e *Engine) Channel(ctx context.Context, ns, name string) (engine.ChannelStats, bool, error) {
	res := e.client.DoMulti(ctx,
		e.client.B().Hget().Key(e.k.occupancy(ns, name)).Field("_t").Build(),
		e.client.B().Hlen().Key(e.k.presence(ns, name)).Build())
	return channelStats(res[0], res[1])
}

func channelStats(total, users rueidis.RedisResult) (engine.ChannelStats, bool, error) {
	n, err := total.AsInt64()
	if rueidis.IsRedisNil(err) {
		return engine.ChannelStats{}, false, nil // vacated between the range and the read
	}
	if err != nil {
		return engine.ChannelStats{}, false, err
	}
	u, err := users.AsInt64()
	if err != nil {
		return engine.ChannelStats{}, false, err
	}
	return engine.ChannelStats{Subscriptions: int(n), Users: int(u)}, n > 0, nil
}

// PresenceAdd implements engine.Presence. Only this node's first
// connection of the user in the channel writes to Redis.
func (e *Engine) PresenceAdd(ctx context.Context, ns, ch, connKey string, m engine.Member, limit int) (bool, error) {
	k := refKey{ns, ch, m.UserID}
	ent := e.presence.acquire(k)
	defer e.presence.release(k, ent)
	if len(ent.conns) > 0 {
		// The user is a member through this node already. (Its stored
		// user_info stays the first connection's.)
		ent.conns[connKey] = struct{}{}
		return false, nil
	}
	id := e.NodeID()
	v, err := e.exec(ctx, "presence_add", e.s.presenceAdd,
		[]string{e.k.presence(ns, ch), e.k.presenceNodes(ns, ch), e.k.presenceCount(ns, ch), e.k.nodes(), e.k.index(id, idxPresence)},
		[]string{id, m.UserID, string(m.Info), strconv.Itoa(limit), indexMember(ns, ch, m.UserID)}).AsInt64()
	if err != nil {
		ent.held = ent.held || outcomeUnknown(err)
		return false, err
	}
	if v < 0 {
		return false, engine.ErrFull
	}
	ent.held = false
	ent.conns[connKey] = struct{}{}
	return v == 1, nil
}

// PresenceRemove implements engine.Presence. Only this node's last
// connection of the user in the channel writes to Redis.
func (e *Engine) PresenceRemove(ctx context.Context, ns, ch, connKey, userID string) (bool, error) {
	k := refKey{ns, ch, userID}
	ent := e.presence.acquire(k)
	defer e.presence.release(k, ent)
	if _, ok := ent.conns[connKey]; !ok {
		return false, nil
	}
	delete(ent.conns, connKey)
	if len(ent.conns) > 0 {
		return false, nil
	}
	id := e.NodeID()
	v, err := e.exec(ctx, "presence_remove", e.s.presenceRemove,
		[]string{e.k.presence(ns, ch), e.k.presenceNodes(ns, ch), e.k.presenceCount(ns, ch), e.k.index(id, idxPresence)},
		[]string{id, userID, indexMember(ns, ch, userID)}).AsInt64()
	if err != nil {
		ent.held = !errors.Is(err, errFenced) // the retry loop removes it later
		return false, err
	}
	ent.held = false
	return v == 1, nil
}

// PresenceMembers implements engine.Presence.
func (e *Engine) PresenceMembers(ctx context.Context, ns, ch string) ([]engine.Member, error) {
	all, err := e.do(ctx, "presence_members", e.client.B().Hgetall().Key(e.k.presence(ns, ch)).Build()).AsStrMap()
	if err != nil {
		return nil, err
	}
	out := make([]engine.Member, 0, len(all))
	for user, info := range all {
		m := engine.Member{UserID: user}
		if info != "" {
			m.Info = []byte(info)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b engine.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// PresenceCount implements engine.Presence.
func (e *Engine) PresenceCount(ctx context.Context, ns, ch string) (int, error) {
	n, err := e.do(ctx, "presence_count", e.client.B().Hlen().Key(e.k.presence(ns, ch)).Build()).AsInt64()
	return int(n), err
}

// UserOnline implements engine.Users; only this node's first connection of
// the user writes to Redis.
func (e *Engine) UserOnline(ctx context.Context, ns, userID, connKey string) (bool, error) {
	k := refKey{ns: ns, user: userID}
	ent := e.users.acquire(k)
	defer e.users.release(k, ent)
	if len(ent.conns) > 0 {
		ent.conns[connKey] = struct{}{}
		return false, nil
	}
	id := e.NodeID()
	v, err := e.exec(ctx, "user_online", e.s.userOnline,
		[]string{e.k.user(ns, userID), e.k.nodes(), e.k.index(id, idxUsers)},
		[]string{id, indexMember(ns, userID)}).AsInt64()
	if err != nil {
		ent.held = ent.held || outcomeUnknown(err)
		return false, err
	}
	ent.held = false
	ent.conns[connKey] = struct{}{}
	return v == 1, nil
}

// UserOffline implements engine.Users.
func (e *Engine) UserOffline(ctx context.Context, ns, userID, connKey string) (bool, error) {
	k := refKey{ns: ns, user: userID}
	ent := e.users.acquire(k)
	defer e.users.release(k, ent)
	if _, ok := ent.conns[connKey]; !ok {
		return false, nil
	}
	delete(ent.conns, connKey)
	if len(ent.conns) > 0 {
		return false, nil
	}
	id := e.NodeID()
	v, err := e.exec(ctx, "user_offline", e.s.userOffline,
		[]string{e.k.user(ns, userID), e.k.index(id, idxUsers)},
		[]string{id, indexMember(ns, userID)}).AsInt64()
	if err != nil {
		ent.held = !errors.Is(err, errFenced)
		return false, err
	}
	ent.held = false
	return v == 1, nil
}

// OnlineUsers implements engine.Users: one pipelined EXISTS per id.
func (e *Engine) OnlineUsers(ctx context.Context, ns string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make(rueidis.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = e.client.B().Exists().Key(e.k.user(ns, id)).Build()
	}
	var out []string
	for i, res := range e.client.DoMulti(ctx, cmds...) {
		n, err := res.AsInt64()
		e.metrics.StoreOp("online_users", err)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// CacheSet implements engine.Cache: the last write wins, Redis expires it.
func (e *Engine) CacheSet(ctx context.Context, ns, ch string, payload []byte, ttl time.Duration) error {
	ms := max(ttl.Milliseconds(), 1)
	return e.do(ctx, "cache_set", e.client.B().Set().Key(e.k.cache(ns, ch)).Value(rueidis.BinaryString(payload)).PxMilliseconds(ms).Build()).Error()
}

// CacheGet implements engine.Cache: GET and PTTL in one round trip.
func (e *Engine) CacheGet(ctx context.Context, ns, ch string) ([]byte, time.Duration, bool, error) {
	key := e.k.cache(ns, ch)
	res := e.client.DoMulti(ctx, e.client.B().Get().Key(key).Build(), e.client.B().Pttl().Key(key).Build())
	payload, err := res[0].AsBytes()
	if rueidis.IsRedisNil(err) {
		e.metrics.StoreOp("cache_get", nil)
		return nil, 0, false, nil
	}
	e.metrics.StoreOp("cache_get", err)
	if err != nil {
		return nil, 0, false, err
	}
	ms, err := res[1].AsInt64()
	if err != nil {
		return nil, 0, false, err
	}
	if ms == -2 || ms == 0 { // expired between the two reads
		return nil, 0, false, nil
	}
	return payload, time.Duration(max(ms, 0)) * time.Millisecond, true, nil
}

// Claim implements engine.Claims: the script swaps the owner atomically;
// the previous owner's node kicks it (this node directly, another through
// the control channel).
func (e *Engine) Claim(ctx context.Context, ns, key, connKey string) (string, error) {
	id := e.NodeID()
	v, err := e.exec(ctx, "claim", e.s.claim,
		[]string{e.k.claim(ns, key), e.k.nodes(), e.k.index(id, idxClaims)},
		[]string{id, connKey, indexMember(ns, key)}).AsStrSlice()
	if err != nil {
		return "", err
	}
	if len(v) != 2 {
		return "", errEnvelope
	}
	prev, prevNode := v[0], v[1]
	switch {
	case prev == "":
		return "", nil
	case prev == connKey && prevNode == id:
		return "", nil // a repeated claim
	case e.isOwnID(prevNode):
		e.local.KickLocal(ns, prev, key)
	default:
		if err := e.sendControl(ctx, control{kind: ctlKick, target: prevNode, namespace: ns, a: prev, b: key}); err != nil {
			return prev, err
		}
	}
	return prev, nil
}

// Release implements engine.Claims.
func (e *Engine) Release(ctx context.Context, ns, key, connKey string) (bool, error) {
	id := e.NodeID()
	v, err := e.exec(ctx, "release", e.s.release,
		[]string{e.k.claim(ns, key), e.k.index(id, idxClaims)},
		[]string{id, connKey, indexMember(ns, key)}).AsInt64()
	return v == 1, err
}
