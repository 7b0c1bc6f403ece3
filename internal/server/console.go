package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/console"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
)

// mountConsole adds the live console (console.enabled) after the
// protocols, whose front-ends its publish form uses. It is started and
// drained like them. See docs/console.md.
func (s *Server) mountConsole(mux *http.ServeMux) error {
	c := s.cfg.Console
	if !c.Enabled {
		return nil
	}
	src := s.cfg.Limits.ClientSource()
	opts := console.Options{
		Path:        c.Path,
		Token:       c.Token,
		AllowRemote: c.AllowRemote,
		ClientAddr:  src.Addr,
		Hub:         s.hub,
		Counters:    s.consoleCounters,
		Protocol:    s.namespaceProtocol,
		Logger:      s.log,
	}
	for _, fe := range s.frontEnds {
		switch p := fe.(type) {
		case *pusher.Server:
			for _, a := range p.Apps().All() {
				opts.PusherApps = append(opts.PusherApps, a.ID)
			}
			opts.PublishPusher = func(ctx context.Context, appID, channel, event, data string) error {
				return publishPusher(ctx, p, appID, channel, event, data)
			}
		case *damon.Server:
			opts.PublishDamon = p.Inject
		}
	}
	fe := console.New(opts)
	s.frontEnds = append(s.frontEnds, fe)
	return fe.Mount(mux)
}

// publishPusher applies the HTTP API's checks for one event on one
// channel, then triggers it.
func publishPusher(ctx context.Context, p *pusher.Server, appID, channel, event, data string) error {
	app := p.Apps().ByID(appID)
	if app == nil {
		return fmt.Errorf("no app %q", appID)
	}
	if err := pusher.ValidateChannelName(channel, app.Limits.MaxChannelNameLength, false); err != nil {
		return err
	}
	if len(event) > app.Limits.MaxEventNameLength {
		return fmt.Errorf("event name over %d characters", app.Limits.MaxEventNameLength)
	}
	if len(data) > app.Limits.MaxEventBytes {
		return fmt.Errorf("data over the app's max_event_bytes (%d)", app.Limits.MaxEventBytes)
	}
	return p.Trigger(ctx, app, pusher.TriggerEvent{Name: event, Data: data, Channels: []string{channel}})
}

// namespaceProtocol names the protocol owning a hub namespace: Damon's and
// ws-room's have fixed names, Talo's a prefix, Pusher's are app ids.
func (s *Server) namespaceProtocol(ns string) string {
	switch {
	case ns == damon.Namespace:
		return "damon"
	case ns == dcl.Namespace:
		return "dcl"
	case strings.HasPrefix(ns, "talo/"):
		return "talo"
	}
	for _, a := range s.cfg.Pusher.Apps {
		if a.ID == ns {
			return "pusher"
		}
	}
	return ""
}

// consoleCounters reads the totals the console charts from the metrics
// registry (in process, once a second).
func (s *Server) consoleCounters() console.Counters {
	var c console.Counters
	families, err := s.metrics.Registry.Gather()
	if err != nil {
		return c
	}
	for _, f := range families {
		switch f.GetName() {
		case "switchboard_messages_in_total":
			for _, m := range f.GetMetric() {
				c.MessagesIn += m.GetCounter().GetValue()
			}
		case "switchboard_fanout_deliveries_total":
			for _, m := range f.GetMetric() {
				c.Deliveries += m.GetCounter().GetValue()
			}
		case "switchboard_connections":
			for _, m := range f.GetMetric() {
				cc := console.ConnCount{Open: int(m.GetGauge().GetValue())}
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "protocol":
						cc.Protocol = l.GetValue()
					case "app":
						cc.App = l.GetValue()
					}
				}
				c.Connections = append(c.Connections, cc)
			}
		}
	}
	return c
}
