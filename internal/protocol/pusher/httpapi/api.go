// Package httpapi serves the signed Pusher HTTP API (the "REST API" the
// server SDKs call): triggering events, batches, channel queries, presence
// user lists and terminating a user's connections.
//
// Every request is authenticated the way Pusher authenticates it (auth_key,
// auth_timestamp within 600 s, auth_version 1.0, body_md5, HMAC-SHA256
// auth_signature) before any state is read or changed. Errors are JSON
// bodies {"error": "..."} that say exactly what is wrong, because the SDKs
// surface the body to the developer and a vague "bad request" costs them
// time.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// Backend is the part of *pusher.Server the API drives. It is an interface
// so that tests can substitute a fake; the real server satisfies it as is.
type Backend interface {
	Apps() *pusher.Apps
	Trigger(ctx context.Context, app *pusher.App, ev pusher.TriggerEvent) error
	Channels(ctx context.Context, app *pusher.App, prefix string) (map[string]engine.ChannelStats, error)
	Channel(ctx context.Context, app *pusher.App, name string) (engine.ChannelStats, bool, error)
	PresenceUsers(ctx context.Context, app *pusher.App, channel string) ([]string, error)
	CachedEvent(ctx context.Context, app *pusher.App, channel string) (msg []byte, ttl time.Duration, ok bool, err error)
	TerminateUser(ctx context.Context, app *pusher.App, userID string) error
}

// Options configure an API.
type Options struct {
	// PathPrefix goes before /apps/{id}/...; "" or e.g. "/ws" (a trailing
	// slash is ignored). Clients sign the path including it.
	PathPrefix string
	// MaxBodyBytes caps a request body; larger bodies get 413. Default 1 MiB.
	MaxBodyBytes int64
	// Now is the clock for the timestamp window; default time.Now.
	Now func() time.Time
	// Metrics counts responses by app, route and status; nil disables.
	Metrics *metrics.Metrics
	// Logger gets server-side failures; default slog.Default().
	Logger *slog.Logger
	// RateLimit holds one token bucket per app id (limits.api_rate); nil
	// lets every request through. See ratelimit.go.
	RateLimit *ratelimit.Keyed[string]
}

// API is the HTTP handler. It is safe for concurrent use and holds no
// mutable state of its own.
type API struct {
	b       Backend
	prefix  string
	maxBody int64
	now     func() time.Time
	metrics *metrics.Metrics
	log     *slog.Logger
	rate    *ratelimit.Keyed[string]
	signers sync.Map // *pusher.App -> *pushersign.Signer
}

// signer returns app's REST signature verifier, made on first use. Keyed
// by the App, so an app rebuilt with a new secret gets a new one.
func (a *API) signer(app *pusher.App) *pushersign.Signer {
	if s, ok := a.signers.Load(app); ok {
		return s.(*pushersign.Signer)
	}
	s, _ := a.signers.LoadOrStore(app, pushersign.NewSigner(app.Secret))
	return s.(*pushersign.Signer)
}

// DefaultMaxBodyBytes is the request body cap when Options leaves it 0.
const DefaultMaxBodyBytes = config.DefaultMaxHTTPBodyBytes

// New returns an API over b.
func New(b Backend, opts Options) *API {
	a := &API{
		b:       b,
		prefix:  strings.TrimSuffix(opts.PathPrefix, "/"),
		maxBody: opts.MaxBodyBytes,
		now:     opts.Now,
		metrics: opts.Metrics,
		log:     opts.Logger,
		rate:    opts.RateLimit,
	}
	if a.prefix != "" && !strings.HasPrefix(a.prefix, "/") {
		a.prefix = "/" + a.prefix
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "pusher-httpapi")
	return a
}

// Register mounts the API on mux at {PathPrefix}/apps/. The pattern has no
// method, so that OPTIONS preflights and wrong methods reach ServeHTTP and
// get Pusher-shaped answers rather than the mux's plain-text ones.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle(a.prefix+"/apps/", a)
}

// Route names, used as the metrics label. They are a fixed set so that
// random paths cannot grow the metric's cardinality.
const (
	routeEvents     = "events"
	routeBatch      = "batch_events"
	routeChannels   = "channels"
	routeChannel    = "channel"
	routeUsers      = "channel_users"
	routeTerminate  = "terminate_connections"
	routeUnknown    = "unknown"
	appLabelUnknown = "unknown"
)

// route is a matched request: which endpoint, for which app, with which
// path arguments (channel name or user id).
type route struct {
	name   string
	method string // the one method the endpoint takes
	appID  string
	arg    string
}

// match parses {prefix}/apps/{id}/... . ok is false for anything else.
func (a *API) match(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, a.prefix+"/apps/")
	if !ok {
		return route{name: routeUnknown}, false
	}
	seg := strings.Split(rest, "/")
	if seg[0] == "" {
		return route{name: routeUnknown}, false
	}
	r := route{appID: seg[0]}
	switch {
	case len(seg) == 2 && seg[1] == "events":
		r.name, r.method = routeEvents, http.MethodPost
	case len(seg) == 2 && seg[1] == "batch_events":
		r.name, r.method = routeBatch, http.MethodPost
	case len(seg) == 2 && seg[1] == "channels":
		r.name, r.method = routeChannels, http.MethodGet
	case len(seg) == 3 && seg[1] == "channels" && seg[2] != "":
		r.name, r.method, r.arg = routeChannel, http.MethodGet, seg[2]
	case len(seg) == 4 && seg[1] == "channels" && seg[2] != "" && seg[3] == "users":
		r.name, r.method, r.arg = routeUsers, http.MethodGet, seg[2]
	case len(seg) == 4 && seg[1] == "users" && seg[2] != "" && seg[3] == "terminate_connections":
		r.name, r.method, r.arg = routeTerminate, http.MethodPost, seg[2]
	default:
		return route{name: routeUnknown, appID: seg[0]}, false
	}
	return r, true
}

// apiError is an HTTP status with the message for the JSON body.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// request is what every endpoint handler gets: the authenticated app, the
// signed parameters (lower-cased keys, one value each) and the raw body.
type request struct {
	ctx    context.Context
	app    *pusher.App
	params map[string]string
	body   []byte
	arg    string
}

// ServeHTTP routes, authenticates and answers one request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := a.match(r.URL.Path)
	app := (*pusher.App)(nil)
	if apps := a.b.Apps(); rt.appID != "" && apps != nil {
		app = apps.ByID(rt.appID)
	}
	// Label with the app id only when the app exists: ids come from the
	// URL, and an unauthenticated caller must not be able to mint labels.
	label := appLabelUnknown
	if app != nil {
		label = app.ID
	}
	setCORS(w.Header(), r)

	status, body, detail := a.serve(w, r, rt, ok, app)
	if detail != "" {
		a.log.Error("http api request failed", "app", label, "route", rt.name, "status", status, "err", detail)
	}
	if a.metrics != nil {
		a.metrics.HTTPRequest(label, rt.name, status)
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Shared header values and the empty answer of a publish: net/http only
// reads them, and setting the canonical keys directly saves the slice
// Header.Set allocates per call.
var (
	contentTypeJSON = []string{"application/json"}
	anyOrigin       = []string{"*"}
	emptyObject     = []byte("{}")
)

// bodyPool holds request body buffers. A body's bytes are only read while
// the request is served: everything kept (event names, data, channels)
// is copied out of it, so the buffer goes back when serve returns.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBody(b *bytes.Buffer) {
	if b.Cap() > 64<<10 { // let a rare large body go rather than pin it
		return
	}
	b.Reset()
	bodyPool.Put(b)
}

// serve produces the status and JSON body; it only sets headers, so
// ServeHTTP can count and log every outcome in one place.
func (a *API) serve(w http.ResponseWriter, r *http.Request, rt route, ok bool, app *pusher.App) (int, []byte, string) {
	if r.Method == http.MethodOptions {
		// Preflights carry no credentials, so they are answered for any
		// path; the real request is still authenticated.
		return http.StatusNoContent, nil, ""
	}
	if !ok {
		return errorBody(errorf(http.StatusNotFound, "no such endpoint: %s %s", truncate(r.Method, 16), truncate(r.URL.Path, 200)))
	}
	if app == nil {
		return errorBody(errorf(http.StatusNotFound, "unknown app id %q", truncate(rt.appID, 64)))
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method+", OPTIONS")
		return errorBody(errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s; use %s", truncate(r.Method, 16), truncate(r.URL.Path, 200), rt.method))
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	// With w passed in, an oversized body also makes the server close the
	// connection instead of draining the rest of it.
	buf := bodyPool.Get().(*bytes.Buffer)
	defer putBody(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.maxBody))
	body := buf.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorBody(errorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes", a.maxBody))
		}
		return errorBody(errorf(http.StatusBadRequest, "could not read request body: %v", err))
	}
	params, aerr := verifyRequest(app, a.signer(app), r.Method, signedPaths(r), r.URL.RawQuery, body, a.now())
	if aerr != nil {
		return errorBody(aerr)
	}
	// Checked after authentication so that only the app's owner learns
	// that it exists but is switched off.
	if !app.Enabled {
		return errorBody(errorf(http.StatusForbidden, "app %s is disabled", app.ID))
	}
	if aerr := a.overRate(w, app); aerr != nil {
		return errorBody(aerr)
	}
	req := &request{ctx: r.Context(), app: app, params: params, body: body, arg: rt.arg}
	var resp any
	switch rt.name {
	case routeEvents:
		resp, aerr = a.events(req)
	case routeBatch:
		resp, aerr = a.batchEvents(req)
	case routeChannels:
		resp, aerr = a.channels(req)
	case routeChannel:
		resp, aerr = a.channel(req)
	case routeUsers:
		resp, aerr = a.users(req)
	case routeTerminate:
		resp, aerr = a.terminate(req)
	}
	if aerr != nil {
		return errorBody(aerr)
	}
	if _, empty := resp.(struct{}); empty {
		return http.StatusOK, emptyObject, ""
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return errorBody(errorf(http.StatusInternalServerError, "encoding response: %v", err))
	}
	return http.StatusOK, out, ""
}

// signedPaths lists the spellings of the request path a client may have
// signed: the decoded path (what the SDKs sign, as they do not escape
// channel names) and, when it differs, the escaped form on the wire.
func signedPaths(r *http.Request) []string {
	p := []string{r.URL.Path}
	if e := r.URL.EscapedPath(); e != r.URL.Path {
		p = append(p, e)
	}
	return p
}

// backendError turns a Backend failure into a 500. The caller sees a
// generic message; the detail is logged, since it may name internals.
func backendError(op string, err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, msg: op + ": " + err.Error()}
}

// errorBody renders e as {"error": "..."}; for 5xx it also returns the
// detail to log, and hides it from the body.
func errorBody(e *apiError) (int, []byte, string) {
	msg, detail := e.msg, ""
	if e.status >= 500 {
		msg, detail = "internal server error", e.msg
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	return e.status, b, detail
}

// setCORS allows any origin: the API is authenticated by signature, not by
// cookies, so a permissive policy exposes nothing a signed request could
// not already reach.
func setCORS(h http.Header, r *http.Request) {
	h["Access-Control-Allow-Origin"] = anyOrigin
	if r.Method != http.MethodOptions {
		return
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Requested-With")
	}
	h.Set("Access-Control-Max-Age", "86400")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// The real server must satisfy Backend; this fails the build, not a
// deployment, if either side's signatures drift.
var _ Backend = (*pusher.Server)(nil)
