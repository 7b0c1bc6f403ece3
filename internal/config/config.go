// Package config is Switchboard's configuration: an embedded default that
// works with no file at all, a strictly decoded YAML file (an unknown key is
// an error that names the key and its line), and environment variables on
// top. A zero value always means the documented default.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole server configuration.
type Config struct {
	Listen    string    `yaml:"listen"`
	TLS       TLS       `yaml:"tls"`
	Log       Log       `yaml:"log"`
	Limits    Limits    `yaml:"limits"`
	WebSocket WebSocket `yaml:"websocket"`
	Pusher    Pusher    `yaml:"pusher"`
	Damon     Damon     `yaml:"damon"`
	DCL       DCL       `yaml:"dcl"`
	Talo      Talo      `yaml:"talo"`
	Cluster   Cluster   `yaml:"cluster"`
	Console   Console   `yaml:"console"`
	Shutdown  Shutdown  `yaml:"shutdown"`
	Debug     Debug     `yaml:"debug"`
	Memory    Memory    `yaml:"memory"`
}

// Memory tunes what the process keeps from the operating system. The Go
// runtime's own knobs apply as well: GOGC and GOMEMLIMIT in the environment.
type Memory struct {
	// TrimIdleHeap returns the heap's free pages to the OS when the heap
	// has gone quiet, e.g. after a connect storm (default true; see
	// docs/performance.md).
	TrimIdleHeap *bool `yaml:"trim_idle_heap"`
	// GCPercent is the garbage collector's target, as GOGC (default
	// DefaultGCPercent, 10 to 1000); a GOGC environment variable wins.
	GCPercent int `yaml:"gc_percent"`
}

// DefaultGCPercent: half the runtime's 100. 10,000 idle subscribed
// connections: 1,941 against 2,100-2,115 B of RSS each (switchboard-bench
// idle, docs/performance.md); server CPU for the 10,000 connect+subscribe
// storm 1.71-1.77 against 1.68-1.93 s, no difference through the noise.
const DefaultGCPercent = 50

// Debug holds operator tools that are off by default.
type Debug struct {
	// PprofListen serves net/http/pprof on its own listener ("" = off).
	// Keep it on loopback: profiles reveal internals.
	PprofListen string `yaml:"pprof_listen"`
}

// TLS serves HTTPS/WSS when both files are set.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Log sets log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Limits are server-wide bounds on every connection.
type Limits struct {
	MaxMessageBytes  int      `yaml:"max_message_bytes"`
	SendQueueBytes   int      `yaml:"send_queue_bytes"`
	WriteTimeout     Duration `yaml:"write_timeout"`
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	MaxHTTPBodyBytes int64    `yaml:"max_http_body_bytes"`
	// Rate limits, per node; see ratelimits.go and docs/configuration.md.
	ConnectionRate ConnectionRate `yaml:"connection_rate"`
	APIRate        APIRate        `yaml:"api_rate"`
	// TrustedProxies (CIDRs or addresses) are reverse proxies whose
	// ClientIPHeader (e.g. X-Forwarded-For) names the client; from any
	// other peer the header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	ClientIPHeader string   `yaml:"client_ip_header"`
	// HTTPBodyTimeout bounds reading a request body, from its headers on.
	HTTPBodyTimeout Duration `yaml:"http_body_timeout"`
	// MaxHTTPConnections bounds connections still plain HTTP (WebSockets
	// are not counted); one more closes the oldest. 0: a quarter of the
	// process's open-file limit.
	MaxHTTPConnections int `yaml:"max_http_connections"`
}

// WebSocket tunes the WebSocket transport.
type WebSocket struct {
	Compression bool `yaml:"compression"`
}

// Shutdown bounds graceful shutdown.
type Shutdown struct {
	Timeout Duration `yaml:"timeout"`
}

// Pusher configures the Pusher Channels protocol.
type Pusher struct {
	Enabled *bool `yaml:"enabled"`
	// PathPrefix is put before /app/{key} and /apps/{id}/... (e.g. "/ws").
	PathPrefix      string   `yaml:"path_prefix"`
	ActivityTimeout Duration `yaml:"activity_timeout"`
	PongTimeout     Duration `yaml:"pong_timeout"`
	// StrictChannelNames caps channel names at Pusher's documented 164
	// characters instead of the SDKs' 200.
	StrictChannelNames bool  `yaml:"strict_channel_names"`
	Apps               []App `yaml:"apps"`
}

// App is one Pusher application; apps are isolated from each other.
type App struct {
	ID      string `yaml:"id"`
	Key     string `yaml:"key"`
	Secret  string `yaml:"secret"`
	Enabled *bool  `yaml:"enabled"`
	// ClientEvents allows client- events on private and presence channels.
	ClientEvents *bool `yaml:"client_events"`
	// UserAuthentication makes connections that neither sign in nor join a
	// private/presence channel close with 4009 after AuthTimeout.
	UserAuthentication bool     `yaml:"user_authentication"`
	AuthTimeout        Duration `yaml:"auth_timeout"`
	// SubscriptionCount sends pusher_internal:subscription_count events.
	SubscriptionCount bool `yaml:"subscription_count"`
	// Watchlist enables watchlist online/offline events after sign-in.
	Watchlist *bool `yaml:"watchlist"`
	// SubscriptionErrorEvents also sends soketi-style
	// pusher:subscription_error (Laravel Echo's .error() listens for it).
	SubscriptionErrorEvents *bool     `yaml:"subscription_error_events"`
	Limits                  AppLimits `yaml:"limits"`
	Webhooks                []Webhook `yaml:"webhooks"`
	WebhookBatching         bool      `yaml:"webhook_batching"`
	CacheTTL                Duration  `yaml:"cache_ttl"`
	AllowedOrigins          []string  `yaml:"allowed_origins"`
}

// AppLimits bound one app.
type AppLimits struct {
	MaxConnections          int `yaml:"max_connections"`            // 0: unlimited
	ClientEventsPerSecond   int `yaml:"client_events_per_second"`   // default 10
	MaxPresenceMembers      int `yaml:"max_presence_members"`       // default 100
	MaxPresenceMemberBytes  int `yaml:"max_presence_member_bytes"`  // default 1024
	MaxChannelNameLength    int `yaml:"max_channel_name_length"`    // default 200 (164 strict)
	MaxEventNameLength      int `yaml:"max_event_name_length"`      // default 200
	MaxEventBytes           int `yaml:"max_event_bytes"`            // default 10240
	MaxChannelsPerEvent     int `yaml:"max_channels_per_event"`     // default 100
	MaxBatchSize            int `yaml:"max_batch_size"`             // default 10
	MaxWatchlistSize        int `yaml:"max_watchlist_size"`         // default 100
	MaxSubscriptionsPerConn int `yaml:"max_subscriptions_per_conn"` // default 1000
}

// Webhook is one receiver of an app's webhooks.
type Webhook struct {
	URL        string            `yaml:"url"`
	EventTypes []string          `yaml:"event_types"` // empty: all
	Filter     WebhookFilter     `yaml:"filter"`
	Headers    map[string]string `yaml:"headers"`
}

// WebhookFilter limits a webhook to some channels.
type WebhookFilter struct {
	ChannelPrefix string `yaml:"channel_name_starts_with"`
	ChannelSuffix string `yaml:"channel_name_ends_with"`
}

// Duration decodes "30s"-style strings or integer seconds.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration: %w", n.Line, err)
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := n.Decode(&secs); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	return fmt.Errorf("line %d: %q is not a duration (use e.g. 30s, 2m)", n.Line, s)
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the commented default configuration.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the embedded default configuration with defaults applied.
func Default() *Config {
	c, err := Parse(defaultYAML)
	if err != nil {
		panic("embedded default config: " + err.Error())
	}
	return c
}

// Load reads a file (or the embedded default when path is ""), applies
// environment overrides and defaults, and validates. Its error is an
// *Error listing every problem with its line and column in the file.
func Load(path string, env func(string) string) (*Config, error) {
	data := defaultYAML
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		data = b
	}
	c, err := load(data, env)
	var ce *Error
	if errors.As(err, &ce) {
		ce.File = path
	}
	return c, err
}

// Parse decodes, defaults and validates YAML (without the environment).
func Parse(data []byte) (*Config, error) {
	return load(data, nil)
}

// load checks the file's structure (check.go), decodes it, applies the
// environment and defaults, and validates, placing each validation error
// at its setting's line.
func load(data []byte, env func(string) string) (*Config, error) {
	nodes, problems := check(data)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	c, err := decode(data)
	if err != nil { // check accepts only what decode does; kept as a guard
		return nil, &Error{Problems: []Problem{{Message: err.Error()}}}
	}
	if env != nil {
		if err := applyEnv(c, env); err != nil {
			return nil, err
		}
	}
	c.applyDefaults()
	if errs := c.problems(); len(errs) > 0 {
		for _, msg := range errs {
			problems = append(problems, place(msg, nodes))
		}
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

func decode(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// io.EOF: an empty file is the zero config, i.e. all defaults.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// applyEnv applies SWITCHBOARD_* variables, documented in docs/configuration.md.
func applyEnv(c *Config, env func(string) string) error {
	if v := env("SWITCHBOARD_LISTEN"); v != "" {
		c.Listen = v
	} else if v := env("PORT"); v != "" {
		c.Listen = ":" + v
	}
	if v := env("SWITCHBOARD_LOG_LEVEL"); v != "" {
		c.Log.Level = v
	}
	if v := env("SWITCHBOARD_LOG_FORMAT"); v != "" {
		c.Log.Format = v
	}
	if v := env("SWITCHBOARD_TLS_CERT"); v != "" {
		c.TLS.Cert = v
	}
	if v := env("SWITCHBOARD_TLS_KEY"); v != "" {
		c.TLS.Key = v
	}
	if v := env("SWITCHBOARD_DAMON_TOKEN"); v != "" {
		c.Damon.Token = v
	}
	if v := env("SWITCHBOARD_CONSOLE_TOKEN"); v != "" {
		c.Console.Token = v
	}
	if v := env("SWITCHBOARD_PPROF_LISTEN"); v != "" {
		c.Debug.PprofListen = v
	}
	id, key, secret := env("SWITCHBOARD_APP_ID"), env("SWITCHBOARD_APP_KEY"), env("SWITCHBOARD_APP_SECRET")
	if id != "" || key != "" || secret != "" {
		// Without pusher.apps in the file they override the default app.
		if c.Pusher.Apps == nil {
			c.Pusher.Apps = defaultApps()
		}
		if len(c.Pusher.Apps) == 0 {
			c.Pusher.Apps = []App{{}}
		}
		a := &c.Pusher.Apps[0]
		if id != "" {
			a.ID = id
		}
		if key != "" {
			a.Key = key
		}
		if secret != "" {
			a.Secret = secret
		}
	}
	return nil
}

// Validate reports every configuration error in one error.
func (c *Config) Validate() error {
	if errs := c.problems(); len(errs) > 0 {
		return errors.New("config: " + strings.Join(errs, "; "))
	}
	return nil
}

// problems lists the configuration's errors, each starting with the key
// path of the setting it is about (place finds its line from that).
func (c *Config) problems() []string {
	var errs []string
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Sprintf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Sprintf("log.format %q: want text or json", c.Log.Format))
	}
	if c.Memory.GCPercent < 10 || c.Memory.GCPercent > 1000 {
		errs = append(errs, fmt.Sprintf("memory.gc_percent %d: want 10 to 1000 (the default is %d)", c.Memory.GCPercent, DefaultGCPercent))
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		errs = append(errs, "tls: set both cert and key, or neither")
	}
	if c.Pusher.PathPrefix != "" && (!strings.HasPrefix(c.Pusher.PathPrefix, "/") || strings.HasSuffix(c.Pusher.PathPrefix, "/")) {
		errs = append(errs, fmt.Sprintf("pusher.path_prefix %q: must start with / and not end with /", c.Pusher.PathPrefix))
	}
	if len(c.Pusher.Apps) == 0 && On(c.Pusher.Enabled, true) {
		errs = append(errs, "pusher.apps is an empty list: list at least one app, leave the key out for the default app, "+
			"or turn the Pusher protocol off with pusher.enabled: false")
	}
	ids, keys := map[string]bool{}, map[string]bool{}
	for i, a := range c.Pusher.Apps {
		where := fmt.Sprintf("pusher.apps[%d]", i)
		for _, req := range []struct{ key, v string }{{"id", a.ID}, {"key", a.Key}, {"secret", a.Secret}} {
			if req.v == "" {
				errs = append(errs, fmt.Sprintf("%s: missing required key `%s` (id, key and secret are required)", where, req.key))
			}
		}
		if ids[a.ID] {
			errs = append(errs, fmt.Sprintf("%s: duplicate id %q", where, a.ID))
		}
		if keys[a.Key] {
			errs = append(errs, fmt.Sprintf("%s: duplicate key %q", where, a.Key))
		}
		ids[a.ID], keys[a.Key] = true, true
		if negativeLimit(a.Limits) {
			errs = append(errs, where+".limits: values must not be negative (0 means the default)")
		}
		for j, w := range a.Webhooks {
			if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
				errs = append(errs, fmt.Sprintf("%s.webhooks[%d].url %q: must be http:// or https://", where, j, w.URL))
			}
			for _, t := range w.EventTypes {
				if !webhookEvents[t] {
					errs = append(errs, fmt.Sprintf("%s.webhooks[%d].event_types: unknown %q", where, j, t))
				}
			}
		}
	}
	errs = append(errs, c.Limits.validateRates()...)
	errs = append(errs, c.Damon.validate()...)
	errs = append(errs, c.DCL.validate()...)
	errs = append(errs, c.Talo.validate()...)
	errs = append(errs, c.Cluster.validate()...)
	errs = append(errs, c.Console.validate(c.sharedSecrets())...)
	return errs
}

var webhookEvents = map[string]bool{
	"channel_occupied": true, "channel_vacated": true, "member_added": true, "member_removed": true,
	"client_event": true, "cache_miss": true, "subscription_count": true,
}

// UsesDefaultSecret reports whether Pusher is on and an app still has the
// published default secret.
func (c *Config) UsesDefaultSecret() bool {
	if !On(c.Pusher.Enabled, true) {
		return false
	}
	for _, a := range c.Pusher.Apps {
		if a.Secret == DefaultSecret {
			return true
		}
	}
	return false
}

func negativeLimit(l AppLimits) bool {
	for _, v := range []int{l.MaxConnections, l.ClientEventsPerSecond, l.MaxPresenceMembers, l.MaxPresenceMemberBytes,
		l.MaxChannelNameLength, l.MaxEventNameLength, l.MaxEventBytes, l.MaxChannelsPerEvent, l.MaxBatchSize,
		l.MaxWatchlistSize, l.MaxSubscriptionsPerConn} {
		if v < 0 {
			return true
		}
	}
	return false
}
