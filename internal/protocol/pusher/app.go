package pusher

import (
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

// App is one Pusher application at run time. Its id is its hub namespace,
// so apps never see each other's channels, users or connections.
type App struct {
	ID, Key, Secret string
	Enabled         bool

	ClientEvents            bool
	UserAuthentication      bool
	AuthTimeout             time.Duration
	SubscriptionCount       bool
	Watchlist               bool
	SubscriptionErrorEvents bool
	CacheTTL                time.Duration
	AllowedOrigins          []string
	Limits                  config.AppLimits
	Webhooks                []config.Webhook
	WebhookBatching         bool

	Metrics *metrics.Conn
	webhook *webhook.Target    // nil when the app has no webhooks
	signer  *pushersign.Signer // channel and sign-in auth; nil: made per check
}

// authSigner verifies the app's auth signatures; an App built without
// NewApp (or whose secret was changed) gets a fresh one per call.
func (a *App) authSigner() *pushersign.Signer {
	if a.signer != nil && a.signer.Secret() == a.Secret {
		return a.signer
	}
	return pushersign.NewSigner(a.Secret)
}

// NewApp builds the run-time app from its configuration.
func NewApp(c config.App, m *metrics.Metrics) *App {
	return &App{
		ID: c.ID, Key: c.Key, Secret: c.Secret,
		Enabled:                 config.On(c.Enabled, true),
		ClientEvents:            config.On(c.ClientEvents, true),
		UserAuthentication:      c.UserAuthentication,
		AuthTimeout:             c.AuthTimeout.D(),
		SubscriptionCount:       c.SubscriptionCount,
		Watchlist:               config.On(c.Watchlist, true),
		SubscriptionErrorEvents: config.On(c.SubscriptionErrorEvents, true),
		CacheTTL:                c.CacheTTL.D(),
		AllowedOrigins:          c.AllowedOrigins,
		Limits:                  c.Limits,
		Webhooks:                c.Webhooks,
		WebhookBatching:         c.WebhookBatching,
		Metrics:                 m.ForConn("pusher", c.ID),
		webhook:                 webhookTarget(c),
		signer:                  pushersign.NewSigner(c.Secret),
	}
}

func webhookTarget(c config.App) *webhook.Target {
	if len(c.Webhooks) == 0 {
		return nil
	}
	return &webhook.Target{AppID: c.ID, Key: c.Key, Secret: c.Secret, Hooks: c.Webhooks, Batching: c.WebhookBatching}
}

// Apps looks apps up by key (WebSocket path) and by id (HTTP API path).
type Apps struct {
	byKey, byID map[string]*App
}

// NewApps indexes apps; config validation guarantees unique ids and keys.
func NewApps(apps []*App) *Apps {
	a := &Apps{byKey: map[string]*App{}, byID: map[string]*App{}}
	for _, app := range apps {
		a.byKey[app.Key] = app
		a.byID[app.ID] = app
	}
	return a
}

// ByKey returns the app with this key, or nil.
func (a *Apps) ByKey(key string) *App { return a.byKey[key] }

// ByID returns the app with this id, or nil.
func (a *Apps) ByID(id string) *App { return a.byID[id] }

// All returns every app.
func (a *Apps) All() []*App {
	out := make([]*App, 0, len(a.byID))
	for _, app := range a.byID {
		out = append(out, app)
	}
	return out
}
