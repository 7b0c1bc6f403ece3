package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

// Over limits.api_rate an app's requests get 429, Retry-After and a JSON
// error; other apps, and the app's own budget against unsigned floods,
// are untouched.
func TestAPIRateLimitPerApp(t *testing.T) {
	clock := testNow
	h := newHarness(t, func(o *Options) {
		o.Now = func() time.Time { return clock }
		o.RateLimit = ratelimit.NewKeyed[string](ratelimit.Rate{PerSecond: 0.5, Burst: 2}, ratelimit.Options{Now: func() time.Time { return clock }})
	})
	// Requests with a wrong signature do not spend app 1's budget.
	for range 5 {
		h.do(signed(http.MethodPost, "/apps/1/events", nil, []byte(`{"name":"e","channel":"c","data":"x"}`), testKey, "wrong", testNow)).expect(t, 401, "")
	}
	h.post("/apps/1/events", `{"name":"e","channel":"c","data":"1"}`).expect(t, 200, "")
	h.get("/apps/1/channels", nil).expect(t, 200, "")
	res := h.post("/apps/1/events", `{"name":"e","channel":"c","data":"3"}`)
	res.expect(t, http.StatusTooManyRequests, "too many requests for app 1: the limit is 0.5 per second (burst 2) on this node; retry in 2 s")
	if ra := res.header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After %q", ra)
	}
	if n := len(h.fake.triggered()); n != 1 {
		t.Fatalf("%d events reached the backend, want 1 (the refused one must not)", n)
	}
	// App 3 has its own bucket.
	h.do(signed(http.MethodGet, "/apps/3/channels", nil, nil, "278d425bdf160c739803", "7ad3773142a6692b25b8", testNow)).expect(t, 200, "")
	if v := h.m.Value("switchboard_http_api_rate_limited_total", "app", "1"); v != 1 {
		t.Fatalf("rate-limited counter %v", v)
	}
	if v := h.httpCount("1", routeEvents, "429"); v != 1 {
		t.Fatalf("http_requests_total{code=429} %v", v)
	}
	// Two seconds later one token is back.
	clock = clock.Add(2 * time.Second)
	h.do(signed(http.MethodPost, "/apps/1/events", nil, []byte(`{"name":"e","channel":"c","data":"4"}`), testKey, testSecret, clock)).expect(t, 200, "")
}

func TestAPIWithoutRateLimit(t *testing.T) {
	h := newHarness(t)
	for range 50 {
		h.get("/apps/1/channels", nil).expect(t, 200, "")
	}
}
