package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// DefaultTaloStorePath is the SQLite file the Talo front-end creates, in
// the working directory, when no other store is configured.
const DefaultTaloStorePath = "./switchboard-talo.db"

// Talo configures the Talo Socket front-end: the WebSocket and HTTP routes
// the unchanged Talo Godot plugin and Unity package use. Games and access
// keys are made with "switchboard talo ...". See docs/talo.md.
type Talo struct {
	Enabled *bool `yaml:"enabled"`
	// StorePath is the SQLite file holding games, keys, players, channels
	// and presence; created and migrated at start. Ignored with PostgresDSN.
	StorePath string `yaml:"store_path"`
	// PostgresDSN selects PostgreSQL (a pgx DSN or postgres:// URL).
	PostgresDSN string `yaml:"postgres_dsn"`
	// SocketPath serves the WebSocket there and on every path below it
	// (clients append "/?ticket=").
	SocketPath string `yaml:"socket_path"`
	// SocketListen, when set, also serves the WebSocket on a listener of
	// its own, where every path is accepted (the reference's shape, for a
	// socket_url at the root of a host).
	SocketListen string `yaml:"socket_listen"`
	// APIPrefix puts /v1/... and /public/... under a prefix.
	APIPrefix       string   `yaml:"api_prefix"`
	MaxMessageBytes int      `yaml:"max_message_bytes"`
	PingInterval    Duration `yaml:"ping_interval"`
	MaxConnections  int      `yaml:"max_connections"` // 0: unlimited

	TicketTTL      Duration `yaml:"ticket_ttl"`
	SocketTokenTTL Duration `yaml:"socket_token_ttl"`

	// Socket messages per window per connection, before and after
	// identify; SocketMaxWarnings warnings, then close 1008.
	SocketLimitUnidentified int      `yaml:"socket_limit_unidentified"`
	SocketLimitIdentified   int      `yaml:"socket_limit_identified"`
	SocketLimitWindow       Duration `yaml:"socket_limit_window"`
	SocketMaxWarnings       int      `yaml:"socket_max_warnings"`

	// HTTPRateLimits turns the per-IP route limits on (default true).
	HTTPRateLimits    *bool    `yaml:"http_rate_limits"`
	HTTPLimitAuth     int      `yaml:"http_limit_auth"`
	HTTPLimitDefault  int      `yaml:"http_limit_default"`
	HTTPLimitWindow   Duration `yaml:"http_limit_window"`
	TrustProxyHeaders bool     `yaml:"trust_proxy_headers"`

	SignatureMaxSkew   Duration `yaml:"signature_max_skew"`
	SignatureMaxBehind Duration `yaml:"signature_max_behind"`
	SignatureReplayTTL Duration `yaml:"signature_replay_ttl"`

	PageSize int `yaml:"page_size"`

	PresenceSweepInterval Duration `yaml:"presence_sweep_interval"`
	PresenceStaleAfter    Duration `yaml:"presence_stale_after"`

	// AllowedOrigins for browser (web, WebGL) builds; empty: any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// UnityChannelEvents also sends channel joins and leaves under Unity's
	// event names (docs/talo.md, section 15.1 decision).
	UnityChannelEvents bool `yaml:"unity_channel_events"`
}

func (t *Talo) applyDefaults() {
	if t.Enabled == nil {
		t.Enabled = boolPtr(true)
	}
	if t.StorePath == "" {
		t.StorePath = DefaultTaloStorePath
	}
	if t.SocketPath == "" {
		t.SocketPath = "/talo"
	}
	if t.HTTPRateLimits == nil {
		t.HTTPRateLimits = boolPtr(true)
	}
	num := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	dur := func(v *Duration, d time.Duration) {
		if *v == 0 {
			*v = Duration(d)
		}
	}
	num(&t.MaxMessageBytes, 64<<10)
	dur(&t.PingInterval, 30*time.Second)
	dur(&t.TicketTTL, 300*time.Second)
	dur(&t.SocketTokenTTL, time.Hour)
	num(&t.SocketLimitUnidentified, 300)
	num(&t.SocketLimitIdentified, 3600)
	dur(&t.SocketLimitWindow, 60*time.Second)
	num(&t.SocketMaxWarnings, 3)
	num(&t.HTTPLimitAuth, 20)
	num(&t.HTTPLimitDefault, 100)
	dur(&t.HTTPLimitWindow, 60*time.Second)
	dur(&t.SignatureMaxSkew, 300*time.Second)
	dur(&t.SignatureMaxBehind, 60*time.Second)
	dur(&t.SignatureReplayTTL, 600*time.Second)
	num(&t.PageSize, 50)
	dur(&t.PresenceSweepInterval, 10*time.Minute)
	dur(&t.PresenceStaleAfter, 30*time.Minute)
}

func (t *Talo) validate() []string {
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("talo."+key+" "+format, args...))
	}
	if !validPath(t.SocketPath) || t.SocketPath == "/" {
		bad("socket_path", "%q: must start with /, not end with /, not be / alone, and hold no {, }, ? or spaces", t.SocketPath)
	}
	if t.APIPrefix != "" && !validPath(t.APIPrefix) {
		bad("api_prefix", "%q: empty, or start with / and not end with /, holding no {, }, ? or spaces", t.APIPrefix)
	}
	if t.SocketListen != "" {
		if _, _, err := net.SplitHostPort(t.SocketListen); err != nil {
			bad("socket_listen", "%q: want host:port (e.g. \"127.0.0.1:7070\" or \":7070\"), or empty for none", t.SocketListen)
		}
	}
	if t.PostgresDSN != "" && strings.Contains(t.PostgresDSN, "://") {
		if u, err := url.Parse(t.PostgresDSN); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Never echo the DSN: it may hold a password.
			bad("postgres_dsn", "is not a postgres:// or postgresql:// URL (or a key=value DSN)")
		}
	}
	for _, f := range []struct {
		key string
		v   int
	}{
		{"max_message_bytes", t.MaxMessageBytes}, {"max_connections", t.MaxConnections},
		{"socket_limit_unidentified", t.SocketLimitUnidentified}, {"socket_limit_identified", t.SocketLimitIdentified},
		{"socket_max_warnings", t.SocketMaxWarnings}, {"http_limit_auth", t.HTTPLimitAuth},
		{"http_limit_default", t.HTTPLimitDefault}, {"page_size", t.PageSize},
	} {
		if f.v < 0 {
			bad(f.key, "%d: must not be negative (0 means the default)", f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   Duration
	}{
		{"ping_interval", t.PingInterval}, {"ticket_ttl", t.TicketTTL}, {"socket_token_ttl", t.SocketTokenTTL},
		{"socket_limit_window", t.SocketLimitWindow}, {"http_limit_window", t.HTTPLimitWindow},
		{"signature_max_skew", t.SignatureMaxSkew}, {"signature_max_behind", t.SignatureMaxBehind},
		{"signature_replay_ttl", t.SignatureReplayTTL}, {"presence_sweep_interval", t.PresenceSweepInterval},
		{"presence_stale_after", t.PresenceStaleAfter},
	} {
		if f.v < 0 {
			bad(f.key, "%s: must not be negative (0 means the default)", f.v.D())
		}
	}
	if t.MaxMessageBytes > 0 && t.MaxMessageBytes < 1024 {
		bad("max_message_bytes", "%d: at least 1024 (a signed channel message needs room)", t.MaxMessageBytes)
	}
	if t.PageSize > 1000 {
		bad("page_size", "%d: at most 1000", t.PageSize)
	}
	for _, o := range t.AllowedOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			bad("allowed_origins", "%q: want an origin such as https://game.example.com, or *", o)
		}
	}
	return errs
}

// validPath reports a route path: leading /, no trailing /, nothing
// ServeMux would read as a pattern.
func validPath(p string) bool {
	return strings.HasPrefix(p, "/") && (p == "/" || !strings.HasSuffix(p, "/")) && !strings.ContainsAny(p, "{}? \t")
}
