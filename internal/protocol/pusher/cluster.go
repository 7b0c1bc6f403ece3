package pusher

import (
	"context"
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

// heldMarkerTTL outlives any hold; a marker left by a node that died
// before its hold ended expires.
const heldMarkerTTL = time.Minute

func heldKey(held, channel, user string) string {
	return "webhook-held\x00" + held + "\x00" + channel + "\x00" + user
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch ev.Name {
	case "channel_vacated", "member_removed":
		if err := kv.KVSet(ctx, app.ID, heldKey(ev.Name, ev.Channel, ev.UserID), []byte("1"), heldMarkerTTL); err != nil {
			s.log.Warn("cluster webhook marker", "app", app.ID, "event", ev.Name, "channel", ev.Channel, "err", err)
		}
	case "channel_occupied", "member_added":
		held := "channel_vacated"
		if ev.Name == "member_added" {
			held = "member_removed"
		}
		_, taken, err := kv.KVTake(ctx, app.ID, heldKey(held, ev.Channel, ev.UserID))
		if err == nil && taken {
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
