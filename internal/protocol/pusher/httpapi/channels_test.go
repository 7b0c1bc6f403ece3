package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"
)

func seedChannels(h *harness) {
	h.fake.stats["presence-foo"] = engineStats(51, 42)
	h.fake.stats["presence-bar"] = engineStats(3, 2)
	h.fake.stats["news"] = engineStats(13, 0)
	h.fake.stats["private-x"] = engineStats(1, 0)
	h.fake.stats["#server-to-user-7"] = engineStats(2, 0)
}

func TestListChannels(t *testing.T) {
	h := newHarness(t)
	seedChannels(h)
	for _, tc := range []struct {
		name string
		q    url.Values
		want string
	}{
		{"all", nil, `{"channels":{"presence-foo":{},"presence-bar":{},"news":{},"private-x":{}}}`},
		{"prefix", url.Values{"filter_by_prefix": {"presence-"}}, `{"channels":{"presence-foo":{},"presence-bar":{}}}`},
		{"user_count", url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}, `{"channels":{"presence-foo":{"user_count":42},"presence-bar":{"user_count":2}}}`},
		{"longer presence prefix", url.Values{"filter_by_prefix": {"presence-f"}, "info": {"user_count"}}, `{"channels":{"presence-foo":{"user_count":42}}}`},
		{"subscription_count", url.Values{"filter_by_prefix": {"n"}, "info": {"subscription_count"}}, `{"channels":{"news":{"subscription_count":13}}}`},
		{"none match", url.Values{"filter_by_prefix": {"zzz"}}, `{"channels":{}}`},
		{"#-channels only on request", url.Values{"filter_by_prefix": {"#server-to-user-"}}, `{"channels":{"#server-to-user-7":{}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.get("/apps/1/channels", tc.q)
			res.expect(t, 200, "")
			res.jsonEq(t, tc.want)
		})
	}
	if got := h.fake.prefixes[1]; got != "presence-" {
		t.Fatalf("backend got prefix %q", got)
	}

	h.get("/apps/1/channels", url.Values{"info": {"user_count"}}).expect(t, 400, "only available for presence channels: add filter_by_prefix=presence-")
	h.get("/apps/1/channels", url.Values{"info": {"user_count"}, "filter_by_prefix": {"private-"}}).expect(t, 400, "filter_by_prefix=presence-")
	// subscription_count applies to every channel type, presence included (Pusher's REST reference).
	h.get("/apps/1/channels", url.Values{"info": {"subscription_count"}, "filter_by_prefix": {"presence-"}}).jsonEq(t, `{"channels":{"presence-bar":{"subscription_count":3},"presence-foo":{"subscription_count":51}}}`)
	h.get("/apps/1/channels", url.Values{"info": {"members"}}).expect(t, 400, `unknown info attribute "members"`)
}

func TestChannelInfo(t *testing.T) {
	h := newHarness(t)
	seedChannels(h)
	h.fake.stats["cache-price"] = engineStats(4, 0)
	h.fake.stats["presence-cache-room"] = engineStats(4, 3)
	h.fake.cache["cache-price"] = cacheEntry{msg: `{"event":"tick","channel":"cache-price","data":"{\"p\":1}"}`, ttl: 1500*time.Millisecond + 59*time.Second}
	h.fake.cache["presence-cache-room"] = cacheEntry{msg: `{"event":"tick","channel":"presence-cache-room","data":{"raw":true}}`, ttl: time.Minute}
	for _, tc := range []struct {
		path string
		info string
		want string
	}{
		{"news", "", `{"occupied":true}`},
		{"unknown-channel", "", `{"occupied":false}`},
		{"unknown-channel", "subscription_count", `{"occupied":false,"subscription_count":0}`},
		{"news", "subscription_count", `{"occupied":true,"subscription_count":13}`},
		{"presence-foo", "user_count", `{"occupied":true,"user_count":42}`},
		{"cache-price", "cache,subscription_count", `{"occupied":true,"subscription_count":4,"cache":{"data":"{\"p\":1}","ttl":61}}`},
		{"presence-cache-room", "cache,user_count", `{"occupied":true,"user_count":3,"cache":{"data":"{\"raw\":true}","ttl":60}}`},
		{"cache-empty", "cache", `{"occupied":false,"cache":null}`},
		{"#server-to-user-7", "subscription_count", `{"occupied":true,"subscription_count":2}`},
	} {
		t.Run(tc.path+"?"+tc.info, func(t *testing.T) {
			var q url.Values
			if tc.info != "" {
				q = url.Values{"info": {tc.info}}
			}
			res := h.get("/apps/1/channels/"+tc.path, q)
			res.expect(t, 200, "")
			res.jsonEq(t, tc.want)
		})
	}
	for _, tc := range []struct{ path, info, want string }{
		{"news", "user_count", `info=user_count is only available for presence channels, and "news" is not one`},
		{"private-x", "user_count", "only available for presence channels"},
		{"news", "cache", "only available for cache channels"},
		{"presence-foo", "cache", "only available for cache channels"},
		{"news", "occupied", `unknown info attribute "occupied"`},
		{"bad!name", "", "invalid character"},
		{"#watchers-1", "", "reserved"},
	} {
		t.Run("reject "+tc.path+"?"+tc.info, func(t *testing.T) {
			q := url.Values{}
			if tc.info != "" {
				q.Set("info", tc.info)
			}
			h.get("/apps/1/channels/"+tc.path, q).expect(t, 400, tc.want)
		})
	}
}

func TestPresenceUsers(t *testing.T) {
	h := newHarness(t)
	h.fake.users["presence-room"] = []string{"1", "2"}
	res := h.get("/apps/1/channels/presence-room/users", nil)
	res.expect(t, 200, "")
	res.jsonEq(t, `{"users":[{"id":"1"},{"id":"2"}]}`)
	h.get("/apps/1/channels/presence-empty/users", nil).jsonEq(t, `{"users":[]}`)
	h.get("/apps/1/channels/private-room/users", nil).expect(t, 400, `users can only be listed for presence channels (presence-...), and "private-room" is not one`)
	h.get("/apps/1/channels/room/users", nil).expect(t, 400, "presence channels")
}

func TestTerminateConnections(t *testing.T) {
	h := newHarness(t)
	// pusher-http-node posts {} (so body_md5 is present).
	res := h.post("/apps/1/users/user-42/terminate_connections", `{}`)
	res.expect(t, 200, "")
	res.jsonEq(t, `{}`)
	// And an empty body is fine too.
	h.do(signed("POST", "/apps/1/users/7/terminate_connections", nil, nil, testKey, testSecret, testNow)).expect(t, 200, "")
	if !reflect.DeepEqual(h.fake.terminated, []string{"user-42", "7"}) {
		t.Fatalf("terminated %v", h.fake.terminated)
	}
	h.post("/apps/1/users/a!b/terminate_connections", `{}`).expect(t, 400, `user id "a!b" is not valid`)
	if n := h.httpCount("1", "terminate_connections", "200"); n != 2 {
		t.Fatalf("counted %v", n)
	}
}

func TestRouting(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/apps/1/events", 405, "method GET is not allowed on /apps/1/events; use POST"},
		{"POST", "/apps/1/channels", 405, "use GET"},
		{"PUT", "/apps/1/channels/x", 405, "use GET"},
		{"GET", "/apps/1/users/7/terminate_connections", 405, "use POST"},
		{"GET", "/apps/1/nope", 404, "no such endpoint"},
		{"GET", "/apps/1/channels/x/users/y", 404, "no such endpoint"},
		{"GET", "/apps/", 404, "no such endpoint"},
		{"GET", "/elsewhere", 404, "no such endpoint"},
		{"GET", "/apps/1/channels//users", 404, "no such endpoint"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h.do(signed(tc.method, tc.path, nil, nil, testKey, testSecret, testNow)).expect(t, tc.status, tc.want)
		})
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t)
	r := httptest.NewRequest(http.MethodOptions, "/apps/1/events", nil)
	r.Header.Set("Origin", "https://example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "content-type, x-pusher-library")
	res := h.do(r)
	if res.status != http.StatusNoContent {
		t.Fatalf("preflight status %d", res.status)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
		"Access-Control-Allow-Headers": "content-type, x-pusher-library",
	} {
		if got := res.header.Get(k); got != want {
			t.Fatalf("%s = %q, want %q", k, got, want)
		}
	}
	if n := h.httpCount("1", "events", "204"); n != 1 {
		t.Fatalf("preflight counted %v", n)
	}
	// Real responses, errors included, carry the origin header too.
	if got := h.get("/apps/1/channels", nil).header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("Allow-Origin %q", got)
	}
	if got := h.post("/apps/1/events", `{`).header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("Allow-Origin on error %q", got)
	}
}

// A backend failure is a 500 whose body does not leak the internal error.
func TestBackendError(t *testing.T) {
	h := newHarness(t)
	h.fake.err = errBackend
	for _, res := range []response{
		h.post("/apps/1/events", `{"name":"e","channel":"a","data":"x"}`),
		h.post("/apps/1/batch_events", `{"batch":[{"name":"e","channel":"a","data":"x"}]}`),
		h.get("/apps/1/channels", nil),
		h.get("/apps/1/channels/a", nil),
		h.get("/apps/1/channels/cache-a", url.Values{"info": {"cache"}}),
		h.get("/apps/1/channels/presence-a/users", nil),
		h.post("/apps/1/users/1/terminate_connections", `{}`),
	} {
		res.expect(t, 500, "internal server error")
		res.jsonEq(t, `{"error":"internal server error"}`)
	}
}

func TestMetricsPerRoute(t *testing.T) {
	h := newHarness(t)
	h.post("/apps/1/events", `{"name":"e","channel":"a","data":"x"}`)
	h.post("/apps/1/events", `{"name":"e"}`)
	h.post("/apps/1/batch_events", `{"batch":[{"name":"e","channel":"a","data":"x"}]}`)
	h.get("/apps/1/channels", nil)
	h.get("/apps/1/channels/a", nil)
	h.get("/apps/1/channels/presence-a/users", nil)
	h.do(signed("GET", "/apps/1/bogus", nil, nil, testKey, testSecret, testNow))
	h.do(signed("GET", "/apps/some-random-id/channels", nil, nil, testKey, testSecret, testNow))
	for _, c := range []struct{ app, route, code string }{
		{"1", "events", "200"}, {"1", "events", "400"}, {"1", "batch_events", "200"},
		{"1", "channels", "200"}, {"1", "channel", "200"}, {"1", "channel_users", "200"},
		{"1", "unknown", "404"}, {"unknown", "channels", "404"},
	} {
		if n := h.httpCount(c.app, c.route, c.code); n != 1 {
			t.Errorf("app=%s route=%s code=%s counted %v, want 1", c.app, c.route, c.code, n)
		}
	}
}

func TestRegister(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PathPrefix = "/ws" })
	mux := http.NewServeMux()
	h.api.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, signed("GET", "/ws/apps/1/channels", nil, nil, testKey, testSecret, testNow))
	if w.Code != 200 || w.Body.String() != `{"channels":{}}` {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}
