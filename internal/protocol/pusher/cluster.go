package pusher

import (
	"context"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

// What the cluster decides on this node's behalf: transitions a departed
// node left behind (the engine hands each to exactly one surviving node),
// and fencing, when the cluster dropped this node and its clients must
// reconnect to one it still knows.

// ownApps makes the server the owner of every app's namespace in the hub.
func (s *Server) ownApps() {
	for _, app := range s.opts.Apps.All() {
		s.opts.Hub.Own(app.ID, s)
	}
}

// Orphaned implements hub.Owner: it emits what the departed node's own
// connections would have emitted had they closed normally.
func (s *Server) Orphaned(o engine.Orphan) {
	app := s.opts.Apps.ByID(o.Namespace)
	if app == nil {
		return
	}
	ctx := context.Background()
	switch o.Kind {
	case engine.OrphanVacated:
		s.emitWebhook(app, webhook.Event{Name: "channel_vacated", Channel: o.Channel})
	case engine.OrphanMemberRemoved:
		removed := memberRemoved(o.Channel, o.Member.UserID)
		_ = s.opts.Hub.Publish(ctx, engine.Publication{Namespace: app.ID, Channel: o.Channel, Payload: removed})
		s.emitWebhook(app, webhook.Event{Name: "member_removed", Channel: o.Channel, UserID: o.Member.UserID})
	case engine.OrphanUserOffline:
		_ = s.opts.Hub.Publish(ctx, engine.Publication{Namespace: app.ID, Channel: watchersChannel(o.Member.UserID), Payload: watchlistEvent(nil, []string{o.Member.UserID})})
	}
	s.log.Info("emitted a departed node's transition", "app", app.ID, "kind", o.Kind, "channel", o.Channel, "user_id", o.Member.UserID)
}

// Reconnect implements hub.Reconnectable: 4200 makes pusher-js reconnect
// at once, to a node whose state the cluster holds.
func (ss *session) Reconnect() {
	ss.fail(4200, "This node left the cluster; reconnect.")
}

// Held webhooks across a cluster. One node holds channel_vacated (or
// member_removed) for the dispatcher's grace period, and a re-occupy within
// it cancels the pair, so a flapping channel sends nothing. With several
// nodes the vacate and the re-occupy are often seen by different nodes, so
// the pairing goes through the cluster's KV: the vacating node sets a
// marker; an occupied transition anywhere takes it (and is then not sent);
// the held event goes out only if its node can still take the marker
// (webhook.Options.Confirm). Each marker is taken once, so every
// channel_occupied sent is matched by at most one channel_vacated, whoever
// saw what.

//
// The vacating node decides (its store call says the channel emptied)
// before it can write its marker, so a re-occupy on another node in
// between would find no marker and send channel_occupied while the
// vacate is still held: two occupied in a row once the hold ends (seen in
// the rolling-restart test, for member_added). So a leave that may vacate
// is announced first (announceLeave, before the store call), and an
// occupy that finds no marker waits while an announcement stands: the
// marker, if the leave vacated, is written before the announcement goes.

// heldMarkerTTL outlives any hold; a marker left by a node that died
// before its hold ended expires.
const heldMarkerTTL = time.Minute

// leaveAnnouncementTTL bounds how long an occupy waits on an announced
// leave (whose node may have died half-way); the leave's own store calls
// time out after 2 s each.
const leaveAnnouncementTTL = 5 * time.Second

func heldKey(held, channel, user string) string {
	return "webhook-held\x00" + held + "\x00" + channel + "\x00" + user
}

// pairsWebhooks reports whether channel's held webhooks are paired
// through the cluster's KV: a cluster, the app's webhooks on, and a
// channel of the app's own (# channels raise none).
func (s *Server) pairsWebhooks(app *App, channel string) bool {
	return s.opts.ClusterWebhooks != nil && s.webhooksOn(app) && !strings.HasPrefix(channel, "#")
}

// noWithdraw is announceLeave's result where nothing was announced.
func noWithdraw() {}

func leavingKey(held, channel, user string) string {
	return "webhook-leaving\x00" + held + "\x00" + channel + "\x00" + user
}

// announceLeave, in a cluster with the app's webhooks on, announces a
// leave that may end in held (channel_vacated or member_removed), before
// the store call that decides it. The returned func withdraws the
// announcement; call it after the held event, if any, was emitted (its
// marker written). Two nodes leaving the same channel at once share the
// key, and the first to finish withdraws it for both: that narrower race
// is left.
func (s *Server) announceLeave(app *App, held, channel, user string) (withdraw func()) {
	if !s.pairsWebhooks(app, channel) {
		return noWithdraw
	}
	kv := s.opts.ClusterWebhooks
	key := leavingKey(held, channel, user)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kv.KVSet(ctx, app.ID, key, []byte("1"), leaveAnnouncementTTL); err != nil {
		s.log.Warn("cluster webhook announcement", "app", app.ID, "event", held, "channel", channel, "err", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = kv.KVDelete(ctx, app.ID, key)
	}
}

// takeHeld takes the marker of a held event matching an occupy, waiting
// while a leave that may still write it is announced. It reports whether
// it took one. The announcement is read before each take: the leaving
// node writes its marker before it withdraws, so a take after a read that
// found no announcement sees any marker that leave wrote.
func takeHeld(kv engine.KV, appID, held, channel, user string) bool {
	deadline := time.Now().Add(leaveAnnouncementTTL)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, pending, gerr := kv.KVGet(ctx, appID, leavingKey(held, channel, user))
		_, taken, terr := kv.KVTake(ctx, appID, heldKey(held, channel, user))
		cancel()
		if terr == nil && taken {
			return true
		}
		if gerr != nil || terr != nil || !pending || time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clusterWebhook applies the cluster pairing to ev and reports whether to
// emit it.
func (s *Server) clusterWebhook(app *App, ev webhook.Event) bool {
	kv := s.opts.ClusterWebhooks
	if kv == nil {
		return true
	}
	switch ev.Name {
	case "channel_vacated", "member_removed", "channel_occupied", "member_added":
	default:
		return true // client events and the rest: no pairing, no store call
	}
	switch ev.Name {
	case "channel_vacated", "member_removed":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := kv.KVSet(ctx, app.ID, heldKey(ev.Name, ev.Channel, ev.UserID), []byte("1"), heldMarkerTTL); err != nil {
			s.log.Warn("cluster webhook marker", "app", app.ID, "event", ev.Name, "channel", ev.Channel, "err", err)
		}
	case "channel_occupied", "member_added":
		held := "channel_vacated"
		if ev.Name == "member_added" {
			held = "member_removed"
		}
		if takeHeld(kv, app.ID, held, ev.Channel, ev.UserID) {
			return false // a node still holds the matching vacate: both go
		}
	}
	return true
}

// WebhookConfirm is webhook.Options.Confirm for a cluster: a held event
// goes out only if no re-occupy took its marker. A store error sends it
// (a duplicate pair beats a lost vacate).
func WebhookConfirm(kv engine.KV) func(ctx context.Context, appID string, ev webhook.Event) bool {
	return func(ctx context.Context, appID string, ev webhook.Event) bool {
		_, ok, err := kv.KVTake(ctx, appID, heldKey(ev.Name, ev.Channel, ev.UserID))
		return ok || err != nil
	}
}
