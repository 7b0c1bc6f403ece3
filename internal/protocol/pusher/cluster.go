package pusher

import (
	"context"

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
		removed := newEvent("pusher_internal:member_removed").channel(o.Channel).
			dataJSON(map[string]string{"user_id": o.Member.UserID}).bytes()
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
