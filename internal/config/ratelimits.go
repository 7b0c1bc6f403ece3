package config

import (
	"fmt"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// ConnectionRate limits how fast one client address may open connections
// (every WebSocket path of the main listener, and Damon's TCP listener).
// Unlike other keys, per_second: 0 turns the limit off; only a missing
// key means the default.
type ConnectionRate struct {
	PerSecond *float64 `yaml:"per_second"`
	Burst     int      `yaml:"burst"`
	// MaxAddresses bounds the addresses remembered at once; the least
	// recently seen are forgotten first (which only lifts their limit).
	MaxAddresses int `yaml:"max_addresses"`
}

// APIRate limits the Pusher HTTP API requests of one app; per_second: 0
// turns it off.
type APIRate struct {
	PerSecond *float64 `yaml:"per_second"`
	Burst     int      `yaml:"burst"`
}

// The rate limits' defaults: generous enough that no ordinary client or
// backend meets them, tight enough to stop a reconnect loop or a runaway
// publisher. Each node counts on its own.
const (
	DefaultConnectionsPerSecond = 50
	DefaultConnectionBurst      = 200
	DefaultAPIRequestsPerSecond = 1000
	DefaultAPIBurst             = 2000
)

// Rate is the limiter setting (off when per_second is 0).
func (r ConnectionRate) Rate() ratelimit.Rate {
	return ratelimit.Rate{PerSecond: deref(r.PerSecond), Burst: r.Burst}
}

// Rate is the limiter setting (off when per_second is 0).
func (r APIRate) Rate() ratelimit.Rate {
	return ratelimit.Rate{PerSecond: deref(r.PerSecond), Burst: r.Burst}
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func floatPtr(v float64) *float64 { return &v }

func (l *Limits) applyRateDefaults() {
	c := &l.ConnectionRate
	if c.PerSecond == nil {
		c.PerSecond = floatPtr(DefaultConnectionsPerSecond)
	}
	if c.Burst == 0 {
		c.Burst = DefaultConnectionBurst
	}
	if c.MaxAddresses == 0 {
		c.MaxAddresses = ratelimit.DefaultMaxKeys
	}
	a := &l.APIRate
	if a.PerSecond == nil {
		a.PerSecond = floatPtr(DefaultAPIRequestsPerSecond)
	}
	if a.Burst == 0 {
		a.Burst = DefaultAPIBurst
	}
}

func (l *Limits) validateRates() []string {
	var errs []string
	check := func(key string, perSecond *float64, burst int) {
		if deref(perSecond) < 0 || burst < 0 {
			errs = append(errs, fmt.Sprintf("limits.%s: per_second and burst must not be negative (per_second: 0 turns the limit off)", key))
		}
	}
	check("connection_rate", l.ConnectionRate.PerSecond, l.ConnectionRate.Burst)
	check("api_rate", l.APIRate.PerSecond, l.APIRate.Burst)
	if l.ConnectionRate.MaxAddresses < 0 {
		errs = append(errs, "limits.connection_rate.max_addresses must not be negative")
	}
	if _, err := ratelimit.ParsePrefixes(l.TrustedProxies); err != nil {
		errs = append(errs, "limits.trusted_proxies: "+err.Error())
	}
	if h := l.ClientIPHeader; h != "" {
		if strings.ContainsAny(h, " \t\r\n:()<>@,;\\\"/[]?={}") {
			errs = append(errs, fmt.Sprintf("limits.client_ip_header %q: not an HTTP header name", h))
		}
		if strings.EqualFold(h, "Forwarded") {
			errs = append(errs, "limits.client_ip_header: the RFC 7239 Forwarded header (for=...) is not read; use a header holding plain addresses, such as X-Forwarded-For or X-Real-IP")
		}
		if len(l.TrustedProxies) == 0 {
			errs = append(errs, fmt.Sprintf("limits.client_ip_header %q is only read on connections from limits.trusted_proxies, and that list is empty: list your proxies' addresses", h))
		}
	}
	return errs
}

// ClientSource says which address a connection counts against; call it on
// a validated configuration.
func (l *Limits) ClientSource() ratelimit.Source {
	p, _ := ratelimit.ParsePrefixes(l.TrustedProxies)
	return ratelimit.Source{Trusted: p, Header: l.ClientIPHeader}
}
