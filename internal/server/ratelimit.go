package server

import (
	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// newRateLimits builds the node's rate limits from limits.connection_rate
// and limits.api_rate; a limit that is off is nil. Each node counts on its
// own (the cluster engines do not share these counts).
func newRateLimits(cfg *config.Config, m *metrics.Metrics) (*ratelimit.Connections, *ratelimit.Keyed[string]) {
	l := cfg.Limits
	conns := ratelimit.NewConnections(ratelimit.ConnectionOptions{
		Rate:         l.ConnectionRate.Rate(),
		MaxAddresses: l.ConnectionRate.MaxAddresses,
		Source:       l.ClientSource(),
		Refused:      m.ConnectionRateLimited,
	})
	// The app list is fixed at start; the bound only guards the table.
	api := ratelimit.NewKeyed[string](l.APIRate.Rate(), ratelimit.Options{MaxKeys: max(1024, 2*len(cfg.Pusher.Apps))})
	return conns, api
}
