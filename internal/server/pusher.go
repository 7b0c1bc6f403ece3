package server

import (
	"net/http"

	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/httpapi"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// newPusher builds the Pusher Channels front-end from cfg.Pusher: the
// WebSocket at {path_prefix}/app/{key} and the signed HTTP API at
// {path_prefix}/apps/. See docs/architecture.md, "Adding a protocol".
func (s *Server) newPusher(limits transport.Options) (frontend.FrontEnd, error) {
	c := s.cfg.Pusher
	apps := make([]*pusher.App, 0, len(c.Apps))
	for _, a := range c.Apps {
		apps = append(apps, pusher.NewApp(a, s.metrics))
	}
	limits.SlowConsumerCode = 4100 // pusher-js backs off and reconnects
	return pusher.NewServer(pusher.Options{
		Apps:            pusher.NewApps(apps),
		Hub:             s.hub,
		Wheel:           s.wheel,
		Upgrader:        &transport.Upgrader{IDs: &s.ids, Poller: s.poller, Options: limits, Compression: s.cfg.WebSocket.Compression},
		Webhooks:        s.webhooks,
		Logger:          s.log,
		ActivityTimeout: c.ActivityTimeout.D(),
		PongTimeout:     c.PongTimeout.D(),
		PathPrefix:      c.PathPrefix,
		ClusterWebhooks: s.clusterKV(),
		API: func(p *pusher.Server) http.Handler {
			return httpapi.New(p, httpapi.Options{PathPrefix: c.PathPrefix, MaxBodyBytes: s.cfg.Limits.MaxHTTPBodyBytes, Metrics: s.metrics, Logger: s.log,
				RateLimit: s.apiLimit})
		},
	}), nil
}
