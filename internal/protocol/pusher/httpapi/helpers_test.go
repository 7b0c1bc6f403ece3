package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// testNow is the fixed server clock of every test: the timestamp of the
// worked example in Pusher's REST documentation.
var testNow = time.Unix(1353088179, 0)

const (
	testKey    = "key1"
	testSecret = "secret1"
)

// fakeBackend records what the API asked of it and answers from tables.
type fakeBackend struct {
	apps *pusher.Apps

	mu         sync.Mutex
	triggers   []pusher.TriggerEvent
	stats      map[string]engine.ChannelStats // occupied channels
	users      map[string][]string
	cache      map[string]cacheEntry
	terminated []string
	prefixes   []string // prefixes passed to Channels
	err        error    // when set, every call fails with it
}

type cacheEntry struct {
	msg string
	ttl time.Duration
}

func newFakeBackend() *fakeBackend {
	lim := config.AppLimits{MaxEventBytes: 10240, MaxChannelsPerEvent: 100, MaxBatchSize: 10, MaxEventNameLength: 200, MaxChannelNameLength: 200}
	return &fakeBackend{
		apps: pusher.NewApps([]*pusher.App{
			{ID: "1", Key: testKey, Secret: testSecret, Enabled: true, Limits: lim},
			{ID: "2", Key: "key2", Secret: "secret2", Enabled: false, Limits: lim},
			// The app of the worked example in Pusher's REST docs.
			{ID: "3", Key: "278d425bdf160c739803", Secret: "7ad3773142a6692b25b8", Enabled: true, Limits: lim},
			// Limits left zero: the API must fall back to Pusher's defaults.
			{ID: "4", Key: "key4", Secret: "secret4", Enabled: true},
		}),
		stats: map[string]engine.ChannelStats{},
		users: map[string][]string{},
		cache: map[string]cacheEntry{},
	}
}

func (f *fakeBackend) Apps() *pusher.Apps { return f.apps }

func (f *fakeBackend) Trigger(_ context.Context, _ *pusher.App, ev pusher.TriggerEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.triggers = append(f.triggers, ev)
	return nil
}

func (f *fakeBackend) Channels(_ context.Context, _ *pusher.App, prefix string) (map[string]engine.ChannelStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.prefixes = append(f.prefixes, prefix)
	out := map[string]engine.ChannelStats{}
	for k, v := range f.stats {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, nil
}

func (f *fakeBackend) Channel(_ context.Context, _ *pusher.App, name string) (engine.ChannelStats, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return engine.ChannelStats{}, false, f.err
	}
	st, ok := f.stats[name]
	return st, ok, nil
}

func (f *fakeBackend) PresenceUsers(_ context.Context, _ *pusher.App, ch string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.users[ch], nil
}

func (f *fakeBackend) CachedEvent(_ context.Context, _ *pusher.App, ch string) ([]byte, time.Duration, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, 0, false, f.err
	}
	e, ok := f.cache[ch]
	return []byte(e.msg), e.ttl, ok, nil
}

func (f *fakeBackend) TerminateUser(_ context.Context, _ *pusher.App, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.terminated = append(f.terminated, id)
	return nil
}

func (f *fakeBackend) triggered() []pusher.TriggerEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pusher.TriggerEvent(nil), f.triggers...)
}

var errBackend = errors.New("engine unreachable: secret detail")

// harness is an API over a fake backend with a fixed clock.
type harness struct {
	t    testing.TB
	api  *API
	fake *fakeBackend
	m    *metrics.Metrics
}

func newHarness(t testing.TB, mod ...func(*Options)) *harness {
	fake := newFakeBackend()
	m := metrics.New()
	opts := Options{
		Now:     func() time.Time { return testNow },
		Metrics: m,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range mod {
		f(&opts)
	}
	return &harness{t: t, api: New(fake, opts), fake: fake, m: m}
}

// signed builds a request signed as the SDKs sign it (app 1 unless key
// and secret say otherwise).
func signed(method, path string, q url.Values, body []byte, key, secret string, now time.Time) *http.Request {
	if q == nil {
		q = url.Values{}
	}
	pushersign.SignRESTQuery(key, secret, method, path, q, body, now)
	r := httptest.NewRequest(method, path+"?"+q.Encode(), bytes.NewReader(body))
	if len(body) > 0 {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (h *harness) do(r *http.Request) response {
	h.t.Helper()
	w := httptest.NewRecorder()
	h.api.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Code != http.StatusNoContent {
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			h.t.Fatalf("%s %s: Content-Type %q, want application/json", r.Method, r.URL, ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &res.json); err != nil {
			h.t.Fatalf("%s %s: body %q is not a JSON object: %v", r.Method, r.URL, w.Body.String(), err)
		}
		if w.Code >= 400 {
			if msg, _ := res.json["error"].(string); msg == "" {
				h.t.Fatalf("%s %s: status %d without an error message: %s", r.Method, r.URL, w.Code, w.Body.String())
			}
		}
	}
	return res
}

// get and post sign as app 1.
func (h *harness) get(path string, q url.Values) response {
	h.t.Helper()
	return h.do(signed(http.MethodGet, path, q, nil, testKey, testSecret, testNow))
}

func (h *harness) post(path string, body string) response {
	h.t.Helper()
	return h.do(signed(http.MethodPost, path, nil, []byte(body), testKey, testSecret, testNow))
}

func (res response) errMsg() string {
	s, _ := res.json["error"].(string)
	return s
}

// expect checks the status and, when want is not "", that the error
// message contains it.
func (res response) expect(t testing.TB, status int, want string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d; body %s", res.status, status, res.raw)
	}
	if want != "" && !strings.Contains(res.errMsg(), want) {
		t.Fatalf("error %q does not mention %q", res.errMsg(), want)
	}
}

// canonical re-encodes v (map key order is sorted by encoding/json).
func canonical(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jsonEq compares a response body with the expected JSON text.
func (res response) jsonEq(t testing.TB, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	var got any
	if err := json.Unmarshal([]byte(res.raw), &got); err != nil {
		t.Fatalf("body %q: %v", res.raw, err)
	}
	if g, e := canonical(t, got), canonical(t, w); g != e {
		t.Fatalf("body %s, want %s", g, e)
	}
}

// httpCount reads switchboard_http_requests_total for the labels.
func (h *harness) httpCount(app, route string, code string) float64 {
	return h.m.Value("switchboard_http_requests_total", "app", app, "route", route, "code", code)
}

func engineStats(subs, users int) engine.ChannelStats {
	return engine.ChannelStats{Subscriptions: subs, Users: users}
}
