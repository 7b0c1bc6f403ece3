package pusher

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// signedInUser is the user a connection authenticated as with pusher:signin.
type signedInUser struct {
	id        string
	info      json.RawMessage
	watchlist []string
}

type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

type userData struct {
	ID        json.RawMessage `json:"id"`
	UserInfo  json.RawMessage `json:"user_info"`
	Watchlist []string        `json:"watchlist"`
}

// watchersChannel is the hub channel that the connections watching userID
// listen on; a user's online/offline change is one publish to it, which
// reaches watchers on every node.
func watchersChannel(userID string) string { return "#watchers-" + userID }

func (ss *session) signin(env Envelope) {
	var d signinData
	if err := decodeData(env.Data, &d); err != nil || d.UserData == "" {
		ss.app.Metrics.Error("bad_signin")
		ss.fail(4009, "pusher:signin needs data with auth and user_data.")
		return
	}
	if !ss.validAuth(d.Auth, ss.id, "::user::", d.UserData) {
		ss.app.Metrics.Error("bad_signin_auth")
		ss.fail(4009, "Invalid signature: Expected HMAC SHA256 hex digest of "+ss.id+"::user::"+truncate(d.UserData, 200))
		return
	}
	var ud userData
	if err := json.Unmarshal([]byte(d.UserData), &ud); err != nil {
		ss.app.Metrics.Error("bad_user_data")
		ss.fail(4009, "user_data is not valid JSON: "+err.Error())
		return
	}
	id, ok := userIDString(ud.ID)
	if !ok || ValidateChannelName(ServerToUserPrefix+id, 300, true) != nil {
		ss.app.Metrics.Error("bad_user_data")
		ss.fail(4009, "user_data must have an id made of A-Z a-z 0-9 _ - = @ , . ;")
		return
	}
	ss.mu.Lock()
	prev := ss.user
	ss.mu.Unlock()
	if prev != nil {
		if prev.id != id {
			ss.sendError(0, "signin_other_user", "Already signed in as another user.", "")
			return
		}
		ss.send(newEvent("pusher:signin_success").dataJSON(map[string]string{"user_data": d.UserData}).bytes())
		return
	}
	watch := ud.Watchlist
	if max := ss.app.Limits.MaxWatchlistSize; len(watch) > max {
		watch = watch[:max]
		ss.sendError(4302, "watchlist_limit", fmt.Sprintf("Watchlist limit exceeded: only the first %d user ids are watched.", max), "")
	}
	user := &signedInUser{id: id, info: ud.UserInfo, watchlist: watch}
	if !ss.app.Watchlist {
		user.watchlist = nil
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.user = user
	ss.mu.Unlock()
	if ss.authWait != nil {
		ss.authWait.Stop()
	}
	ctx, h := &ss.ctx, ss.srv.opts.Hub
	// Messages sent with sendToUser reach every connection of the user,
	// whether or not the client subscribes to its channel explicitly.
	ss.join(&subscription{name: ServerToUserPrefix + id, kind: ClassifyChannel(ServerToUserPrefix + id)}, engine.Member{}, true)
	first, err := h.UserOnline(ctx, ss.app.ID, id, ss.id, ss)
	if err != nil {
		ss.srv.log.Error("user online", "app", ss.app.ID, "err", err)
	}
	// Success only once the user is registered here and in the cluster:
	// a client that saw it can be reached by sendToUser and
	// terminate_connections at once, on any node.
	ss.send(newEvent("pusher:signin_success").dataJSON(map[string]string{"user_data": d.UserData}).bytes())
	if len(user.watchlist) > 0 {
		for _, w := range user.watchlist {
			_, _ = h.Subscribe(ctx, ss.app.ID, watchersChannel(w), ss)
		}
		online, _ := h.OnlineUsers(ctx, ss.app.ID, user.watchlist)
		ss.send(watchlistEvent(online, offlineOf(user.watchlist, online)))
	}
	if first && ss.app.Watchlist {
		ss.publishInternal(watchersChannel(id), watchlistEvent([]string{id}, nil), "")
	}
}

// signout runs when a signed-in connection closes.
func (ss *session) signout(ctx context.Context, user *signedInUser) {
	h := ss.srv.opts.Hub
	for _, w := range user.watchlist {
		_, _, _ = h.Unsubscribe(ctx, ss.app.ID, watchersChannel(w), ss)
	}
	last, err := h.UserOffline(ctx, ss.app.ID, user.id, ss.id, ss)
	if err == nil && last && ss.app.Watchlist {
		_ = h.Publish(ctx, engine.Publication{Namespace: ss.app.ID, Channel: watchersChannel(user.id), Payload: watchlistEvent(nil, []string{user.id})})
	}
}

// watchlistEvent is pusher_internal:watchlist_events, the shape pusher-js's
// watchlist facade iterates: {"events":[{"name":"online","user_ids":[..]},..]}.
func watchlistEvent(online, offline []string) []byte {
	type entry struct {
		Name    string   `json:"name"`
		UserIDs []string `json:"user_ids"`
	}
	events := []entry{}
	if len(online) > 0 {
		events = append(events, entry{"online", online})
	}
	if len(offline) > 0 {
		events = append(events, entry{"offline", offline})
	}
	return newEvent("pusher_internal:watchlist_events").dataJSON(map[string]any{"events": events}).bytes()
}

func offlineOf(all, online []string) []string {
	on := make(map[string]bool, len(online))
	for _, id := range online {
		on[id] = true
	}
	var out []string
	for _, id := range all {
		if !on[id] {
			out = append(out, id)
		}
	}
	return out
}
