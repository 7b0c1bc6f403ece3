package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
)

// channels handles GET /apps/{id}/channels: occupied channels, optionally
// filtered by prefix, each with the requested attributes.
func (a *API) channels(req *request) (any, *apiError) {
	prefix := req.params["filter_by_prefix"]
	// subscription_count is not in Pusher's list for this endpoint; it is
	// accepted (as Sockudo does) because it is cheap and the SDKs pass
	// info through unchanged.
	info, aerr := parseInfo(req.params["info"], infoUserCount, infoSubscriptionCount)
	if aerr != nil {
		return nil, aerr
	}
	presenceOnly := strings.HasPrefix(prefix, "presence-")
	if info.has(infoUserCount) && !presenceOnly {
		return nil, errorf(http.StatusBadRequest,
			"info=user_count is only available for presence channels: add filter_by_prefix=presence- (or a longer presence- prefix); got filter_by_prefix=%q", truncate(prefix, 64))
	}
	all, err := a.b.Channels(req.ctx, req.app, prefix)
	if err != nil {
		return nil, backendError("list channels", err)
	}
	out := make(map[string]map[string]int, len(all))
	for name, st := range all {
		// #-channels (server-to-user, watchlists) are Switchboard's own
		// plumbing; list them only to a caller who asks for them by prefix.
		if strings.HasPrefix(name, "#") && !strings.HasPrefix(prefix, "#") {
			continue
		}
		attrs := map[string]int{}
		presence := pusher.ClassifyChannel(name).Kind == pusher.Presence
		if info.has(infoUserCount) && presence {
			attrs[infoUserCount] = st.Users
		}
		if info.has(infoSubscriptionCount) {
			attrs[infoSubscriptionCount] = st.Subscriptions
		}
		out[name] = attrs
	}
	return map[string]any{"channels": out}, nil
}

// cacheInfo is the "cache" attribute of GET /channels/{name}?info=cache.
type cacheInfo struct {
	Data string `json:"data"`
	TTL  int64  `json:"ttl"` // seconds left
}

// channel handles GET /apps/{id}/channels/{name}. Asking for an attribute
// the channel's type lacks is a 400, as Pusher documents.
func (a *API) channel(req *request) (any, *apiError) {
	name := req.arg
	if aerr := validateChannel(name, limits(req.app).MaxChannelNameLength, true); aerr != nil {
		return nil, aerr
	}
	info, aerr := parseInfo(req.params["info"], infoUserCount, infoSubscriptionCount, infoCache)
	if aerr != nil {
		return nil, aerr
	}
	kind := pusher.ClassifyChannel(name)
	presence := kind.Kind == pusher.Presence
	switch {
	case info.has(infoUserCount) && !presence:
		return nil, errorf(http.StatusBadRequest, "info=user_count is only available for presence channels, and %q is not one", truncate(name, 64))
	case info.has(infoCache) && !kind.Cache:
		return nil, errorf(http.StatusBadRequest, "info=cache is only available for cache channels (cache-, private-cache-, private-encrypted-cache-, presence-cache-), and %q is not one", truncate(name, 64))
	}
	st, occupied, err := a.b.Channel(req.ctx, req.app, name)
	if err != nil {
		return nil, backendError("channel stats", err)
	}
	out := map[string]any{"occupied": occupied}
	if info.has(infoUserCount) {
		out[infoUserCount] = st.Users
	}
	if info.has(infoSubscriptionCount) {
		out[infoSubscriptionCount] = st.Subscriptions
	}
	if info.has(infoCache) {
		c, aerr := a.cached(req, name)
		if aerr != nil {
			return nil, aerr
		}
		out[infoCache] = c // null when nothing is cached
	}
	return out, nil
}

// cached returns the channel's cached event as {"data","ttl"}, or nil.
// The backend stores the whole message subscribers receive; the API
// reports its data field, as a string like every event's data.
func (a *API) cached(req *request, name string) (*cacheInfo, *apiError) {
	msg, ttl, ok, err := a.b.CachedEvent(req.ctx, req.app, name)
	if err != nil {
		return nil, backendError("cached event", err)
	}
	if !ok {
		return nil, nil
	}
	var stored struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(msg, &stored); err != nil {
		return nil, backendError("decoding cached event", err)
	}
	c := &cacheInfo{TTL: ceilSeconds(ttl)}
	if !isNull(stored.Data) {
		if err := json.Unmarshal(stored.Data, &c.Data); err != nil {
			c.Data = string(stored.Data) // data published as raw JSON
		}
	}
	return c, nil
}

// ceilSeconds rounds up, so an entry that is still there never reports a
// ttl of 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

type user struct {
	ID string `json:"id"`
}

// users handles GET /apps/{id}/channels/{name}/users (presence only).
func (a *API) users(req *request) (any, *apiError) {
	name := req.arg
	if aerr := validateChannel(name, limits(req.app).MaxChannelNameLength, false); aerr != nil {
		return nil, aerr
	}
	if pusher.ClassifyChannel(name).Kind != pusher.Presence {
		return nil, errorf(http.StatusBadRequest, "users can only be listed for presence channels (presence-...), and %q is not one", truncate(name, 64))
	}
	ids, err := a.b.PresenceUsers(req.ctx, req.app, name)
	if err != nil {
		return nil, backendError("presence users", err)
	}
	out := make([]user, len(ids))
	for i, id := range ids {
		out[i] = user{ID: id}
	}
	return map[string]any{"users": out}, nil
}

// terminate handles POST /apps/{id}/users/{user_id}/terminate_connections.
// The body (pusher-http-node sends {}) carries nothing and is ignored
// beyond its body_md5.
func (a *API) terminate(req *request) (any, *apiError) {
	id := req.arg
	// A user id that could not name its #server-to-user- channel could not
	// have signed in (sign-in applies the same rule), so it is a mistake.
	if err := pusher.ValidateChannelName(pusher.ServerToUserPrefix+id, math.MaxInt, true); err != nil {
		return nil, errorf(http.StatusBadRequest, "user id %q is not valid: user ids use only A-Z a-z 0-9 _ - = @ , . ;", truncate(id, 64))
	}
	if err := a.b.TerminateUser(req.ctx, req.app, id); err != nil {
		return nil, backendError("terminate user", err)
	}
	return struct{}{}, nil
}
