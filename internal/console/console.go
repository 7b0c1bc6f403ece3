// Package console is the operator's live console: one page on the main
// listener that shows this node's connections per protocol and app, its
// channels with their subscribers, presence members, a live stream of the
// events published through it, and charts of connections and messages per
// second over the last minutes, with a form to publish a test event to a
// Pusher channel or a Damon group. See docs/console.md.
//
// The page and its script are embedded (no CDN, no build step). Data
// reaches the browser over one Server-Sent Events feed: a state snapshot
// per second (read from the hub and the metrics registry, only while
// someone watches) and each event as it is published. Events come from a
// tap on the hub that is installed only while a viewer is connected, so a
// node nobody watches pays one atomic load per publication for it; the tap
// never blocks, and a slow viewer loses events (counted) rather than
// slowing anyone down.
//
// Security: off by default; when on, a token (Bearer header or a login
// form that sets an HttpOnly SameSite=Strict cookie), and by default only
// loopback clients (auth.go).
package console

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/hub"
)

//go:embed assets
var assets embed.FS

// Counters are cumulative totals the charts turn into rates, read once a
// second from the metrics registry.
type Counters struct {
	MessagesIn float64 // messages received from clients
	Deliveries float64 // messages queued to subscribers by fan-out
	// Connections are the open connections by protocol and app.
	Connections []ConnCount
}

// ConnCount is the open connections of one protocol and app.
type ConnCount struct {
	Protocol string `json:"protocol"`
	App      string `json:"app"`
	Open     int    `json:"open"`
}

// Options is everything the console needs; internal/server fills it from
// the configuration.
type Options struct {
	Path        string // e.g. "/console"; the API and feed live below it
	Token       string
	AllowRemote bool
	// ClientAddr is the request's client address (the server's
	// trusted-proxy rules); nil: the TCP peer.
	ClientAddr func(*http.Request) netip.Addr
	Hub        *hub.Hub
	// Counters reads the metrics totals; nil: charts stay empty.
	Counters func() Counters
	// Protocol names the protocol that owns a hub namespace.
	Protocol func(namespace string) string
	// PublishPusher publishes event with data (a string, as the HTTP API
	// takes it) on a channel of a Pusher app; nil: no Pusher form.
	PublishPusher func(ctx context.Context, app, channel, event, data string) error
	// PusherApps are the app ids the form offers.
	PusherApps []string
	// PublishDamon routes one Damon EVENT document; nil: no Damon form.
	PublishDamon func(doc []byte) error
	Logger       *slog.Logger

	// MaxConns bounds the connections listed per namespace (default 200).
	MaxConns int
	// ViewerBuffer bounds the events queued per viewer (default 512).
	ViewerBuffer int
	// History is how many per-second samples are kept (default 600).
	History int
}

// Console serves the page, its API and its feed. It is a frontend.FrontEnd
// so the server mounts, starts and drains it like the protocols.
type Console struct {
	opts    Options
	session string // the cookie value: derived from the token, not the token

	intake chan engine.Publication // the tap's bounded hand-off
	lost   dropCounter             // publications the intake had no room for

	mu      sync.Mutex
	viewers map[*viewer]struct{}
	samples ring
	closing bool
	stop    context.CancelFunc // ends the feeds at Drain
	ctx     context.Context
}

var _ frontend.FrontEnd = (*Console)(nil)

// New builds the console; Mount serves it, Start starts its sampler.
func New(opts Options) *Console {
	if opts.MaxConns <= 0 {
		opts.MaxConns = 200
	}
	if opts.ViewerBuffer <= 0 {
		opts.ViewerBuffer = 512
	}
	if opts.History <= 0 {
		opts.History = 600
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Protocol == nil {
		opts.Protocol = func(string) string { return "" }
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Console{
		opts:    opts,
		session: sessionValue(opts.Token),
		intake:  make(chan engine.Publication, 1024),
		viewers: map[*viewer]struct{}{},
		samples: ring{buf: make([]Sample, opts.History)},
		ctx:     ctx,
		stop:    stop,
	}
}

// Name implements frontend.FrontEnd.
func (c *Console) Name() string { return "console" }

// Mount implements frontend.FrontEnd: the page, the login form, the API
// and the feed, all behind the address and token checks.
func (c *Console) Mount(mux *http.ServeMux) error {
	p := c.opts.Path
	// The page and the static files answer a missing token themselves
	// (the login form; the stylesheet is public); the API wants it.
	routes := []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET " + p, c.page},
		{"GET " + p + "/", c.static},
		{"POST " + p + "/login", c.login},
		{"POST " + p + "/logout", c.logout},
		{"GET " + p + "/api/state", c.requireToken(c.state)},
		{"GET " + p + "/api/feed", c.requireToken(c.feed)},
		{"POST " + p + "/api/publish", c.requireToken(c.publish)},
	}
	for _, r := range routes {
		if err := frontend.Handle(mux, "console.path", r.pattern, c.guard(r.h)); err != nil {
			return err
		}
	}
	return nil
}

// Start implements frontend.FrontEnd: one sample per second into the ring
// and, while anyone watches, the events from the tap to the viewers.
func (c *Console) Start(ctx context.Context) error {
	go c.sampleLoop(ctx)
	go c.fanOut(ctx.Done())
	return nil
}

// Drain implements frontend.FrontEnd: the feeds end so the HTTP server's
// shutdown does not wait for them.
func (c *Console) Drain(context.Context) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.stop()
}

// Endpoints implements frontend.FrontEnd.
func (c *Console) Endpoints() []frontend.Endpoint {
	note := "token required; loopback clients only"
	if c.opts.AllowRemote {
		note = "token required"
	}
	return []frontend.Endpoint{{Kind: frontend.KindHTTP, Path: c.opts.Path, Note: note}}
}

// page serves the console, or the login form with 401 to a browser
// without the token.
func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(r) {
		c.loginPage(w, http.StatusUnauthorized, "")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = pageTemplate.Execute(w, struct{ Path string }{c.opts.Path})
}

var pageTemplate = template.Must(template.ParseFS(assets, "assets/index.html"))

// static serves the script and the stylesheet.
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	// The stylesheet is public: the login form uses it.
	if r.URL.Path[len(c.opts.Path):] != "/style.css" && !c.authorized(r) {
		writeJSONError(w, http.StatusUnauthorized, "console token required")
		return
	}
	switch r.URL.Path[len(c.opts.Path):] {
	case "/app.js":
		c.serveAsset(w, "assets/app.js", "text/javascript; charset=utf-8")
	case "/style.css":
		c.serveAsset(w, "assets/style.css", "text/css; charset=utf-8")
	case "/":
		http.Redirect(w, r, c.opts.Path, http.StatusSeeOther)
	default:
		writeJSONError(w, http.StatusNotFound, "Not Found")
	}
}

func (c *Console) serveAsset(w http.ResponseWriter, name, ctype string) {
	b, err := assets.ReadFile(name)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "asset missing")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// state answers one snapshot as JSON (the page's first paint; scripts).
func (c *Console) state(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.snapshot(r.Context()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// now is the clock samples and events are stamped with.
func now() time.Time { return time.Now() }
