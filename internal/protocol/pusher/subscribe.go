package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/jsonscan"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

// decodeSubscribeData is decodeData for pusher:subscribe and
// pusher:unsubscribe: an object of plain keys channel, auth and
// channel_data with string values is read with jsonscan (each value one
// copy); anything else goes through decodeData as before.
func decodeSubscribeData(raw []byte) (subscribeData, error) {
	var d subscribeData
	if jsonscan.Object(bytes.TrimSpace(raw), func(key, v []byte) bool {
		var dst *string
		switch string(key) {
		case "channel":
			dst = &d.Channel
		case "auth":
			dst = &d.Auth
		case "channel_data":
			dst = &d.ChannelData
		default:
			return false
		}
		if s, ok := jsonscan.StringValue(v); ok {
			*dst = s
			return true
		}
		return len(v) > 0 && v[0] == '"' && json.Unmarshal(v, dst) == nil
	}) {
		return d, nil
	}
	d = subscribeData{}
	err := decodeData(raw, &d)
	return d, err
}

// subscriptionFailure is a refused subscription: Pusher's pusher:error
// (code null, its message text, socket stays open) and, for Laravel Echo's
// .error() hook, soketi's pusher:subscription_error.
type subscriptionFailure struct {
	status  int    // 401 auth, 4009 limits, 4100 full presence channel, 400 bad request
	errType string // AuthError, LimitReached, BadRequest
	reason  string // metric label
	msg     string
}

func (ss *session) refuse(channel string, f subscriptionFailure) {
	ss.sendError(0, f.reason, f.msg, channel)
	if ss.app.SubscriptionErrorEvents && channel != "" {
		ss.send(newEvent("pusher:subscription_error").channel(channel).dataJSON(map[string]any{
			"type": f.errType, "error": f.msg, "status": f.status,
		}).bytes())
	}
}

func (ss *session) subscribe(env Envelope) {
	d, err := decodeSubscribeData(env.Data)
	if err != nil || d.Channel == "" {
		ss.refuse("", subscriptionFailure{400, "BadRequest", "bad_subscribe", "pusher:subscribe needs data with a channel."})
		return
	}
	name := d.Channel
	ss.mu.Lock()
	user := ss.user
	dup := ss.subs.get(name) != nil
	count := ss.subs.len()
	ss.mu.Unlock()

	ownUserChannel := user != nil && name == ServerToUserPrefix+user.id
	if dup {
		if ownUserChannel {
			// Joined silently at sign-in; pusher-js asks for it and waits
			// for the confirmation.
			ss.send(newEvent("pusher_internal:subscription_succeeded").channel(name).dataString("{}").bytes())
			return
		}
		ss.sendError(0, "existing_subscription", "Existing subscription to channel "+name, name)
		return
	}
	if err := ValidateChannelName(name, ss.app.Limits.MaxChannelNameLength, ownUserChannel); err != nil {
		ss.refuse(name, subscriptionFailure{4009, "LimitReached", "bad_channel_name", err.Error()})
		return
	}
	if count >= ss.app.Limits.MaxSubscriptionsPerConn {
		ss.refuse(name, subscriptionFailure{4009, "LimitReached", "too_many_subscriptions",
			fmt.Sprintf("Subscription limit of %d channels per connection reached.", ss.app.Limits.MaxSubscriptionsPerConn)})
		return
	}
	kind := ClassifyChannel(name)
	sub := &subscription{name: name, kind: kind}
	var member engine.Member
	if kind.NeedsAuth() && !ownUserChannel {
		cd, sep := "", ""
		if kind.Kind == Presence && d.ChannelData != "" {
			cd, sep = d.ChannelData, ":"
		}
		if !ss.validAuth(d.Auth, ss.id, ":", name, sep, cd) {
			ss.refuse(name, subscriptionFailure{401, "AuthError", "bad_auth", ss.authErrorText(d.Auth, name, d.ChannelData)})
			return
		}
		if kind.Kind == Presence {
			var f *subscriptionFailure
			if member, f = ss.presenceMember(name, d.ChannelData, user); f != nil {
				ss.refuse(name, *f)
				return
			}
			sub.member = member.UserID
		}
	}
	ss.join(sub, member, false)
}

// validAuth checks "key:hexsig" against HMAC-SHA256(secret, the signed
// parts joined) in constant time.
//
// The signed string is given in parts and hashed with the app's pooled
// Signer: BenchmarkPusherPathPresence's join went from 10 allocs for the
// check (the string, hmac.New, hex) to none (go test -run '^$' -bench
// PusherPathPresence -benchmem ./internal/protocol/pusher/).
func (ss *session) validAuth(auth string, signed ...string) bool {
	key, sig, ok := strings.Cut(auth, ":")
	if !ok || key != ss.app.Key {
		return false
	}
	return ss.app.authSigner().EqualHMAC(sig, signed...)
}

// authErrorText is Pusher's wording; it names what was expected to be
// signed, never the expected signature.
func (ss *session) authErrorText(auth, channel, channelData string) string {
	if auth == "" {
		return "Auth info required to subscribe to " + channel
	}
	what := ss.id + ":" + channel
	if channelData != "" {
		what += ":" + channelData
	}
	return "Invalid signature: Expected HMAC SHA256 hex digest of " + what + ", but got " + truncate(auth, 100)
}

type channelData struct {
	UserID   json.RawMessage `json:"user_id"`
	UserInfo json.RawMessage `json:"user_info"`
}

// presenceMember reads the member from channel_data, or from the signed-in
// user when the auth endpoint left channel_data out (pusher-js allows it).
func (ss *session) presenceMember(channel, raw string, user *signedInUser) (engine.Member, *subscriptionFailure) {
	if raw == "" {
		if user == nil {
			return engine.Member{}, &subscriptionFailure{400, "BadRequest", "missing_channel_data",
				"Presence channel " + channel + " needs channel_data with a user_id, or a signed-in user."}
		}
		// The signed-in user's info obeys the same limit as channel_data's.
		if len(user.info) > ss.app.Limits.MaxPresenceMemberBytes {
			return engine.Member{}, &subscriptionFailure{4009, "LimitReached", "member_too_big",
				fmt.Sprintf("user_info is %d bytes, over the limit of %d.", len(user.info), ss.app.Limits.MaxPresenceMemberBytes)}
		}
		return engine.Member{UserID: user.id, Info: user.info}, nil
	}
	cd, err := parseChannelData(raw)
	if err != nil {
		return engine.Member{}, &subscriptionFailure{400, "BadRequest", "bad_channel_data", "channel_data is not valid JSON: " + err.Error()}
	}
	id, ok := userIDString(cd.UserID)
	if !ok {
		return engine.Member{}, &subscriptionFailure{400, "BadRequest", "bad_channel_data", "channel_data must have a user_id string or number."}
	}
	if len(id) > 128 {
		return engine.Member{}, &subscriptionFailure{400, "BadRequest", "bad_channel_data", "user_id is over 128 characters."}
	}
	if len(cd.UserInfo) > ss.app.Limits.MaxPresenceMemberBytes {
		return engine.Member{}, &subscriptionFailure{4009, "LimitReached", "member_too_big",
			fmt.Sprintf("user_info is %d bytes, over the limit of %d.", len(cd.UserInfo), ss.app.Limits.MaxPresenceMemberBytes)}
	}
	info := bytes.TrimSpace(cd.UserInfo)
	if string(info) == "null" {
		info = nil
	}
	return engine.Member{UserID: id, Info: info}, nil
}

// parseChannelData is json.Unmarshal of channel_data into channelData.
// The usual object, exactly the keys user_id and user_info, is split with
// jsonscan: the fields are spans of one copy of raw (which the member's
// info keeps). BenchmarkPusherPathPresence, per -memprofile: presenceMember
// went from 10 allocs to 2.
func parseChannelData(raw string) (channelData, error) {
	var cd channelData
	b := []byte(raw)
	i, j := jsonscan.SkipWS(b, 0), len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	if jsonscan.Object(b[i:j], func(key, v []byte) bool {
		switch string(key) {
		case "user_id":
			cd.UserID = v
		case "user_info":
			cd.UserInfo = v
		default:
			return false
		}
		return true
	}) {
		return cd, nil
	}
	cd = channelData{}
	err := json.Unmarshal(b, &cd)
	return cd, err
}

// userIDString accepts a string or a number (Laravel sends integers) and
// normalises to the string form used in ids, hash keys and events.
func userIDString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	if p, ok := jsonscan.PlainString(raw); ok {
		return string(p), len(p) > 0
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || s == "" {
			return "", false
		}
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	return n.String(), true
}

// join subscribes on the hub and sends what a new subscriber gets (quiet:
// no subscription_succeeded, for the user channel joined at sign-in):
// subscription_succeeded, the cached event or cache_miss, and the events
// and webhooks its arrival causes for others.
func (ss *session) join(sub *subscription, member engine.Member, quiet bool) {
	ctx, h, app := &ss.ctx, ss.srv.opts.Hub, ss.app
	name := sub.name
	presence := sub.kind.Kind == Presence && sub.member != ""
	firstMember := false
	if presence {
		n, err := h.PresenceCount(ctx, app.ID, name)
		if err == nil && n >= app.Limits.MaxPresenceMembers {
			if known, _ := ss.isMember(ctx, name, member.UserID); !known {
				ss.refuse(name, subscriptionFailure{4100, "LimitReached", "presence_full",
					fmt.Sprintf("Presence channel %s is full (%d members).", name, app.Limits.MaxPresenceMembers)})
				return
			}
		}
		if firstMember, err = h.PresenceJoin(ctx, app.ID, name, ss.id, member); err != nil {
			ss.srv.log.Error("presence join", "app", app.ID, "channel", name, "err", err)
			ss.refuse(name, subscriptionFailure{500, "ServerError", "engine_error", "Subscription failed; try again."})
			return
		}
	}
	total, err := h.Subscribe(ctx, app.ID, name, ss)
	if err != nil && !errors.Is(err, hub.ErrAlreadySubscribed) {
		ss.srv.log.Error("subscribe", "app", app.ID, "channel", name, "err", err)
	}
	ss.mu.Lock()
	if ss.closed { // the connection ended meanwhile: undo
		ss.mu.Unlock()
		ss.leave(context.Background(), sub)
		return
	}
	ss.subs.add(sub)
	ss.mu.Unlock()
	app.Metrics.Subscriptions.Inc()

	if presence {
		// member_added goes out before our own subscription_succeeded: a
		// client that subscribes after seeing us in the channel must find us
		// in its member list, not also get a late member_added for us.
		if firstMember {
			ss.publishInternal(name, memberAdded(name, member.UserID, member.Info), ss.id)
			ss.srv.emitWebhook(app, webhook.Event{Name: "member_added", Channel: name, UserID: member.UserID})
		}
		ss.send(ss.presenceSucceeded(ctx, name))
	} else if !quiet {
		ss.send(newEvent("pusher_internal:subscription_succeeded").channel(name).dataString("{}").bytes())
	}
	if total == 1 {
		ss.srv.emitWebhook(app, webhook.Event{Name: "channel_occupied", Channel: name})
	}
	if sub.kind.Cache {
		if msg, _, ok, err := h.CacheGet(ctx, app.ID, name); err == nil && ok {
			ss.send(msg)
		} else {
			ss.send(newEvent("pusher:cache_miss").channel(name).bytes())
			ss.srv.emitWebhook(app, webhook.Event{Name: "cache_miss", Channel: name})
		}
	}
	ss.subscriptionCountChanged(name, sub.kind, total)
}

func (ss *session) isMember(ctx context.Context, channel, userID string) (bool, error) {
	members, err := ss.srv.opts.Hub.PresenceMembers(ctx, ss.app.ID, channel)
	for _, m := range members {
		if m.UserID == userID {
			return true, err
		}
	}
	return false, err
}

// presenceSucceeded is subscription_succeeded with {presence:{ids,hash,count}}.
func (ss *session) presenceSucceeded(ctx context.Context, name string) []byte {
	members, _ := ss.srv.opts.Hub.PresenceMembers(ctx, ss.app.ID, name)
	n := len(`{"presence":{"ids":[],"hash":{},"count":}}`) + 20
	for _, m := range members {
		n += 2*len(m.UserID) + len(m.Info) + 10
	}
	b := make([]byte, 0, n)
	b = append(b, `{"presence":{"ids":[`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, m.UserID)
	}
	b = append(b, `],"hash":{`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, m.UserID)
		b = append(b, ':')
		if len(m.Info) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, m.Info...)
		}
	}
	b = append(b, `},"count":`...)
	b = strconv.AppendInt(b, int64(len(members)), 10)
	b = append(b, "}}"...)
	// Escaped straight from b into the frame: no string copy of the list.
	return memberFrame("pusher_internal:subscription_succeeded", name, b)
}

func (ss *session) publishInternal(channel string, payload []byte, exclude string) {
	err := ss.srv.opts.Hub.Publish(&ss.ctx, engine.Publication{
		Namespace: ss.app.ID, Channel: channel, Payload: payload, ExcludeConn: exclude,
	})
	if err != nil && ss.ctx.Err() == nil {
		ss.srv.log.Error("publish", "app", ss.app.ID, "channel", channel, "err", err)
	}
}

func (ss *session) unsubscribe(env Envelope) {
	d, err := decodeSubscribeData(env.Data)
	if err != nil || d.Channel == "" {
		ss.sendError(0, "bad_unsubscribe", "pusher:unsubscribe needs data with a channel.", "")
		return
	}
	ss.mu.Lock()
	sub := ss.subs.remove(d.Channel)
	ss.mu.Unlock()
	if sub != nil { // unsubscribing from an unknown channel is ignored, as Pusher does
		ss.leave(&ss.ctx, sub)
	}
}

// leave undoes join: hub unsubscribe, member_removed when this was the
// user's last connection, channel_vacated when the channel emptied.
func (ss *session) leave(ctx context.Context, sub *subscription) {
	h, app := ss.srv.opts.Hub, ss.app
	// Only this node's last subscriber can vacate the channel here; a
	// leave that may is announced to the cluster's webhook pairing first
	// (cluster.go). Without pairing, no count is looked up per leave.
	withdrawVacate := noWithdraw
	if ss.srv.pairsWebhooks(app, sub.name) && h.LocalSubscribers(app.ID, sub.name) <= 1 {
		withdrawVacate = ss.srv.announceLeave(app, "channel_vacated", sub.name, "")
	}
	total, was, err := h.Unsubscribe(ctx, app.ID, sub.name, ss)
	if err != nil {
		ss.srv.log.Error("unsubscribe", "app", app.ID, "channel", sub.name, "err", err)
	}
	if was {
		app.Metrics.Subscriptions.Dec()
	}
	if sub.member != "" {
		withdraw := ss.srv.announceLeave(app, "member_removed", sub.name, sub.member)
		last, err := h.PresenceLeave(ctx, app.ID, sub.name, ss.id, sub.member)
		if err == nil && last {
			removed := memberRemoved(sub.name, sub.member)
			_ = h.Publish(ctx, engine.Publication{Namespace: app.ID, Channel: sub.name, Payload: removed})
			ss.srv.emitWebhook(app, webhook.Event{Name: "member_removed", Channel: sub.name, UserID: sub.member})
		}
		withdraw()
	}
	if was && total == 0 {
		ss.srv.emitWebhook(app, webhook.Event{Name: "channel_vacated", Channel: sub.name})
	}
	withdrawVacate()
	if was {
		ss.subscriptionCountChanged(sub.name, sub.kind, total)
	}
}

// subscriptionCountChanged sends pusher_internal:subscription_count to the
// channel and the subscription_count webhook, when the app enables it.
// Presence channels have member events instead. Above 100 subscribers the
// event is throttled to one per 5 s per channel, as Pusher does.
func (ss *session) subscriptionCountChanged(name string, kind Channel, total int) {
	if !ss.app.SubscriptionCount || kind.Kind == Presence || strings.HasPrefix(name, "#") {
		return
	}
	if total > 100 && !ss.srv.countThrottle.allow(ss.app.ID, name) {
		return
	}
	if total > 0 {
		payload := newEvent("pusher_internal:subscription_count").channel(name).
			dataString(`{"subscription_count":` + strconv.Itoa(total) + `}`).bytes()
		_ = ss.srv.opts.Hub.Publish(context.Background(), engine.Publication{Namespace: ss.app.ID, Channel: name, Payload: payload})
	}
	n := total
	ss.srv.emitWebhook(ss.app, webhook.Event{Name: "subscription_count", Channel: name, SubscriptionCount: &n})
}
