package server

import (
	"log/slog"
	"net/netip"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// newRateLimits builds the node's rate limits from limits.connection_rate
// and limits.api_rate; a limit that is off is nil. Each node counts on its
// own (the cluster engines do not share these counts).
func newRateLimits(cfg *config.Config, m *metrics.Metrics, log *slog.Logger) (*ratelimit.Connections, *ratelimit.Keyed[string]) {
	l := cfg.Limits
	src := l.ClientSource()
	conns := ratelimit.NewConnections(ratelimit.ConnectionOptions{
		Rate:         l.ConnectionRate.Rate(),
		MaxAddresses: l.ConnectionRate.MaxAddresses,
		Source:       src,
		Refused: func(listener string, client netip.Addr) {
			m.ConnectionRateLimited(listener)
			// Debug only: a flood calls this for every attempt.
			log.Debug("new connection refused: its address is over limits.connection_rate", "listener", listener, "client", client)
		},
	})
	// The app list is fixed at start; the bound only guards the table.
	api := ratelimit.NewKeyed[string](l.APIRate.Rate(), ratelimit.Options{MaxKeys: max(1024, 2*len(cfg.Pusher.Apps))})
	cr, ar := l.ConnectionRate.Rate(), l.APIRate.Rate()
	log.Info("rate limits (per node)",
		"connections_per_second_per_address", cr.PerSecond, "connection_burst", cr.Burst,
		"api_requests_per_second_per_app", ar.PerSecond, "api_burst", ar.Burst,
		"trusted_proxies", len(src.Trusted), "client_ip_header", src.Header)
	return conns, api
}
