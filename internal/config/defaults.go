package config

import (
	"time"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// The built-in defaults. Each value is written once: here, or where the
// package that enforces it defines it (transport's connection bounds), and
// default.yaml shows the same values; TestDefaultYAMLIsBuiltIn and
// TestEveryOmittedKeyMeansItsDefault keep the three in step.
const (
	DefaultListen           = ":6001"
	DefaultMaxHTTPBodyBytes = 1 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultHTTPBodyTimeout bounds reading a request body, from its headers on.
	DefaultHTTPBodyTimeout = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	DefaultActivityTimeout = 120 * time.Second
	DefaultPongTimeout     = 30 * time.Second
	DefaultAuthTimeout     = 30 * time.Second
	DefaultCacheTTL        = 30 * time.Minute

	// The default app matches soketi's so that existing tutorials work.
	DefaultAppID  = "app-id"
	DefaultAppKey = "app-key"
	// DefaultSecret is the default app's secret; using it is logged.
	DefaultSecret = "app-secret"

	// StrictMaxChannelNameLength is Pusher's documented channel name cap,
	// used with pusher.strict_channel_names.
	StrictMaxChannelNameLength = 164
)

// defaultAppLimits are the per-app bounds a zero AppLimits field means.
// MaxConnections stays 0: unlimited.
var defaultAppLimits = AppLimits{
	ClientEventsPerSecond:   10,
	MaxPresenceMembers:      100,
	MaxPresenceMemberBytes:  1024,
	MaxChannelNameLength:    200,
	MaxEventNameLength:      200,
	MaxEventBytes:           10240,
	MaxChannelsPerEvent:     100,
	MaxBatchSize:            10,
	MaxWatchlistSize:        100,
	MaxSubscriptionsPerConn: 1000,
}

// WithDefaults returns l with every zero bound replaced by its default; strict selects Pusher's 164-character channel names. Code that
// builds an app without going through Load (tests, the HTTP API's guard)
// gets the same bounds as a configured one.
func (l AppLimits) WithDefaults(strict bool) AppLimits {
	d := defaultAppLimits
	if strict {
		d.MaxChannelNameLength = StrictMaxChannelNameLength
	}
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&l.ClientEventsPerSecond, d.ClientEventsPerSecond)
	def(&l.MaxPresenceMembers, d.MaxPresenceMembers)
	def(&l.MaxPresenceMemberBytes, d.MaxPresenceMemberBytes)
	def(&l.MaxChannelNameLength, d.MaxChannelNameLength)
	def(&l.MaxEventNameLength, d.MaxEventNameLength)
	def(&l.MaxEventBytes, d.MaxEventBytes)
	def(&l.MaxChannelsPerEvent, d.MaxChannelsPerEvent)
	def(&l.MaxBatchSize, d.MaxBatchSize)
	def(&l.MaxWatchlistSize, d.MaxWatchlistSize)
	def(&l.MaxSubscriptionsPerConn, d.MaxSubscriptionsPerConn)
	return l
}

// defaultApps is the app list a configuration without pusher.apps gets.
func defaultApps() []App {
	return []App{{ID: DefaultAppID, Key: DefaultAppKey, Secret: DefaultSecret}}
}

func boolPtr(b bool) *bool { return &b }

// On reports a *bool option, nil meaning def.
func On(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	l := &c.Limits
	if l.MaxMessageBytes == 0 {
		l.MaxMessageBytes = transport.DefaultMaxMessageBytes
	}
	if l.SendQueueBytes == 0 {
		l.SendQueueBytes = transport.DefaultSendQueueBytes
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = Duration(transport.DefaultWriteTimeout)
	}
	if l.HandshakeTimeout == 0 {
		l.HandshakeTimeout = Duration(DefaultHandshakeTimeout)
	}
	if l.MaxHTTPBodyBytes == 0 {
		l.MaxHTTPBodyBytes = DefaultMaxHTTPBodyBytes
	}
	if l.HTTPBodyTimeout == 0 {
		l.HTTPBodyTimeout = Duration(DefaultHTTPBodyTimeout)
	}
	l.applyRateDefaults()
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = Duration(DefaultShutdownTimeout)
	}
	if c.Memory.TrimIdleHeap == nil {
		c.Memory.TrimIdleHeap = boolPtr(true)
	}
	if c.Memory.GCPercent == 0 {
		c.Memory.GCPercent = DefaultGCPercent
	}
	c.Damon.applyDefaults()
	c.DCL.applyDefaults()
	c.Talo.applyDefaults()
	c.Cluster.applyDefaults()
	c.Console.applyDefaults()
	p := &c.Pusher
	if p.Enabled == nil {
		p.Enabled = boolPtr(true)
	}
	if p.ActivityTimeout == 0 {
		p.ActivityTimeout = Duration(DefaultActivityTimeout)
	}
	if p.PongTimeout == 0 {
		p.PongTimeout = Duration(DefaultPongTimeout)
	}
	// A missing (or null) app list means the default app, like any other
	// missing key; an explicit [] is kept for Validate to explain.
	if p.Apps == nil {
		p.Apps = defaultApps()
	}
	for i := range p.Apps {
		a := &p.Apps[i]
		if a.Enabled == nil {
			a.Enabled = boolPtr(true)
		}
		if a.ClientEvents == nil {
			a.ClientEvents = boolPtr(true)
		}
		if a.Watchlist == nil {
			a.Watchlist = boolPtr(true)
		}
		if a.SubscriptionErrorEvents == nil {
			a.SubscriptionErrorEvents = boolPtr(true)
		}
		if a.AuthTimeout == 0 {
			a.AuthTimeout = Duration(DefaultAuthTimeout)
		}
		if a.CacheTTL == 0 {
			a.CacheTTL = Duration(DefaultCacheTTL)
		}
		a.Limits = a.Limits.WithDefaults(p.StrictChannelNames)
	}
}
