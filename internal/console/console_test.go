package console

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/ratelimit"
)

const testToken = "console-test-token-0123"

type published struct {
	mu   sync.Mutex
	docs []string
}

func (p *published) add(s string) {
	p.mu.Lock()
	p.docs = append(p.docs, s)
	p.mu.Unlock()
}

func (p *published) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.docs...)
}

type env struct {
	c    *Console
	h    *hub.Hub
	url  string
	pubs *published
}

func newTestConsole(t *testing.T, mutate func(*Options)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := hub.New(memory.New(), nil)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pubs := &published{}
	opts := Options{
		Path: "/console", Token: testToken, Hub: h,
		Protocol:   func(ns string) string { return map[string]string{"app-id": "pusher", "damon": "damon"}[ns] },
		PusherApps: []string{"app-id"},
		PublishPusher: func(ctx context.Context, app, channel, event, data string) error {
			pubs.add(app + "/" + channel + "/" + event + "/" + data)
			return h.Publish(ctx, engine.Publication{Namespace: app, Channel: channel, Payload: []byte(`{"event":"` + event + `","channel":"` + channel + `","data":` + jsonString(data) + `}`)})
		},
		PublishDamon: func(doc []byte) error { pubs.add(string(doc)); return nil },
		Counters:     func() Counters { return Counters{} },
	}
	if mutate != nil {
		mutate(&opts)
	}
	c := New(opts)
	mux := http.NewServeMux()
	if err := c.Mount(mux); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { c.Drain(context.Background()); srv.Close() })
	return &env{c: c, h: h, url: srv.URL + "/console", pubs: pubs}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func (e *env) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b)
}

var bearer = map[string]string{"Authorization": "Bearer " + testToken}

// Without the token the page is a 401 login form and every API route a
// 401 JSON error; a wrong token is no better; the Bearer header opens all.
func TestTokenIsRequired(t *testing.T) {
	e := newTestConsole(t, nil)
	resp, body := e.do(t, "GET", "", "", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, `<form method="post" action="/console/login"`) {
		t.Fatalf("page without token: %d %s", resp.StatusCode, body)
	}
	for _, r := range []struct{ method, path string }{{"GET", "/api/state"}, {"GET", "/api/feed"}, {"POST", "/api/publish"}, {"GET", "/app.js"}} {
		for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": testToken}, {"Cookie": cookieName + "=" + testToken}} {
			resp, body := e.do(t, r.method, r.path, "{}", hdr)
			if resp.StatusCode != 401 || body != "{\"error\":\"console token required\"}\n" {
				t.Errorf("%s %s %v: %d %s", r.method, r.path, hdr, resp.StatusCode, body)
			}
		}
	}
	resp, body = e.do(t, "GET", "", "", bearer)
	if resp.StatusCode != 200 || !strings.Contains(body, `<script src="/console/app.js" defer>`) {
		t.Fatalf("page with token: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "GET", "/api/state", "", bearer); resp.StatusCode != 200 || !strings.Contains(body, `"forms":{"pusher_apps":["app-id"],"damon":true}`) {
		t.Fatalf("state: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, "GET", "/style.css", "", nil); resp.StatusCode != 200 {
		t.Fatalf("the login form's stylesheet: %d", resp.StatusCode)
	}
}

// The login form sets an HttpOnly, SameSite=Strict cookie that is not the
// token, and that cookie opens the console; logout clears it.
func TestLoginSetsAStrictCookie(t *testing.T) {
	e := newTestConsole(t, nil)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	resp, body := e.do(t, "POST", "/login", "token=nope", form)
	if resp.StatusCode != 401 || !strings.Contains(body, "Wrong token.") || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %d %v %s", resp.StatusCode, resp.Cookies(), body)
	}
	resp, _ = e.do(t, "POST", "/login", "token="+url.QueryEscape(testToken), form)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/console" || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Header)
	}
	ck := resp.Cookies()[0]
	if ck.Name != cookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console" || strings.Contains(ck.Value, testToken) {
		t.Fatalf("cookie %+v", ck)
	}
	cookie := map[string]string{"Cookie": ck.Name + "=" + ck.Value}
	if resp, _ := e.do(t, "GET", "/api/state", "", cookie); resp.StatusCode != 200 {
		t.Fatalf("state with the cookie: %d", resp.StatusCode)
	}
	resp, _ = e.do(t, "POST", "/logout", "", cookie)
	if c := resp.Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Fatalf("logout cookies %v", c)
	}
}

// Loopback only by default: a remote client address (here from a trusted
// proxy's X-Forwarded-For) gets 403 even with the token; allow_remote
// lets it in.
func TestRemoteClientsAreRefusedUnlessAllowed(t *testing.T) {
	src := ratelimit.Source{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Header: "X-Forwarded-For"}
	remote := map[string]string{"Authorization": "Bearer " + testToken, "X-Forwarded-For": "203.0.113.9"}
	e := newTestConsole(t, func(o *Options) { o.ClientAddr = src.Addr })
	for _, path := range []string{"", "/api/state", "/api/feed", "/login"} {
		method := "GET"
		if path == "/login" {
			method = "POST"
		}
		if resp, body := e.do(t, method, path, "", remote); resp.StatusCode != 403 || !strings.Contains(body, "loopback clients only") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := e.do(t, "GET", "/api/state", "", bearer); resp.StatusCode != 200 {
		t.Fatalf("loopback: %d", resp.StatusCode)
	}
	open := newTestConsole(t, func(o *Options) { o.ClientAddr = src.Addr; o.AllowRemote = true })
	if resp, _ := open.do(t, "GET", "/api/state", "", remote); resp.StatusCode != 200 {
		t.Fatalf("allow_remote: %d", resp.StatusCode)
	}
}

// The publish form: Pusher and Damon requests reach their publishers;
// bad bodies, another site's origin and a form content type are refused.
func TestPublish(t *testing.T) {
	e := newTestConsole(t, nil)
	js := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"}
	if resp, body := e.do(t, "POST", "/api/publish", `{"protocol":"pusher","app":"app-id","channel":"c1","event":"e1","data":"{\"a\":1}"}`, js); resp.StatusCode != 200 || body != "{\"ok\":true}\n" {
		t.Fatalf("pusher: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "POST", "/api/publish", `{"protocol":"damon","group":"g1","event":"HELLO","data":{"n":1}}`, js); resp.StatusCode != 200 {
		t.Fatalf("damon: %d %s", resp.StatusCode, body)
	}
	want := []string{`app-id/c1/e1/{"a":1}`, `{"op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GROUP","identifier":"g1"}}`}
	if got := e.pubs.all(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("published %q", got)
	}
	for body, want := range map[string]string{
		`{"protocol":"pusher","app":"other","channel":"c","event":"e"}`:           "no such Pusher app",
		`{"protocol":"pusher","app":"app-id","channel":"c","event":"e","data":1}`: "pusher data must be a JSON string",
		`{"protocol":"pusher","app":"app-id","channel":"c","event":"pusher:x"}`:   "reserved",
		`{"protocol":"damon","event":"E"}`:                                        "group is required",
		`{"protocol":"irc","event":"E"}`:                                          "protocol must be pusher or damon",
		`{"protocol":"damon","group":"g","event":"E","x":1}`:                      "unknown field",
	} {
		resp, got := e.do(t, "POST", "/api/publish", body, js)
		if resp.StatusCode != 400 || !strings.Contains(got, want) {
			t.Errorf("%s: %d %s, want 400 with %q", body, resp.StatusCode, got, want)
		}
	}
	ok := `{"protocol":"damon","group":"g1","event":"HELLO"}`
	if resp, body := e.do(t, "POST", "/api/publish", ok, map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "text/plain"}); resp.StatusCode != 415 {
		t.Fatalf("text/plain: %d %s", resp.StatusCode, body)
	}
	cross := map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json", "Origin": "https://evil.example"}
	if resp, body := e.do(t, "POST", "/api/publish", ok, cross); resp.StatusCode != 403 || !strings.Contains(body, "cross-origin") {
		t.Fatalf("cross-origin: %d %s", resp.StatusCode, body)
	}
	if n := len(e.pubs.all()); n != 2 {
		t.Fatalf("%d publications after the refusals", n)
	}
}

// sseReader reads a feed's messages.
type sseReader struct {
	t    *testing.T
	resp *http.Response
	br   *bufio.Reader
}

func (e *env) openFeed(t *testing.T, query string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/feed"+query, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("feed: %d %v", resp.StatusCode, resp.Header)
	}
	return &sseReader{t: t, resp: resp, br: bufio.NewReader(resp.Body)}
}

// next returns the next message's event name and data.
func (r *sseReader) next() (string, string) {
	r.t.Helper()
	var name, data string
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("feed ended: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

// nextEvent skips state messages up to the next ev.
func (r *sseReader) nextEvent() Event {
	r.t.Helper()
	for {
		name, data := r.next()
		if name != "ev" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			r.t.Fatal(err)
		}
		return ev
	}
}

// The feed starts with the history and a state, then carries every
// publication that passes its filter, in order; the tap is set only while
// a feed is open.
func TestFeedCarriesFilteredEvents(t *testing.T) {
	e := newTestConsole(t, nil)
	if e.h.Publish(context.Background(), engine.Publication{Namespace: "app-id", Channel: "before", Payload: []byte(`{}`)}) != nil || len(e.c.intake) != 0 {
		t.Fatal("the tap is set with no viewer")
	}
	all := e.openFeed(t, "")
	if name, _ := all.next(); name != "history" {
		t.Fatalf("first message %q", name)
	}
	if name, data := all.next(); name != "state" || !strings.Contains(data, `"namespaces"`) {
		t.Fatalf("second message %q %s", name, data)
	}
	only := e.openFeed(t, "?channel=private-*&event=wanted")
	ctx := context.Background()
	pub := func(ch, ev string) {
		p := engine.Publication{Namespace: "app-id", Channel: ch, Payload: []byte(`{"event":"` + ev + `","channel":"` + ch + `","data":"{\"x\":1}"}`)}
		if err := e.h.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pub("public", "wanted")
	pub("private-a", "other")
	pub("private-a", "wanted")
	for i, want := range []string{"public/wanted", "private-a/other", "private-a/wanted"} {
		ev := all.nextEvent()
		if ev.Channel+"/"+ev.Event != want || ev.Protocol != "pusher" || ev.App != "app-id" || ev.Data != `{"x":1}` {
			t.Fatalf("event %d: %+v, want %s", i, ev, want)
		}
	}
	if ev := only.nextEvent(); ev.Channel != "private-a" || ev.Event != "wanted" {
		t.Fatalf("filtered feed got %+v", ev)
	}
	if resp, body := e.do(t, "GET", "/api/feed?channel=a*b", "", bearer); resp.StatusCode != 400 || !strings.Contains(body, "* may only end a value") {
		t.Fatalf("bad filter: %d %s", resp.StatusCode, body)
	}
}

// A viewer that does not read loses events, counted, and nobody waits:
// the publisher returns while the viewer's queue is full.
func TestSlowViewerDropsAndCounts(t *testing.T) {
	e := newTestConsole(t, func(o *Options) { o.ViewerBuffer = 1 })
	v := &viewer{events: make(chan []byte, 1), state: make(chan []byte, 1)}
	if !e.c.addViewer(v) {
		t.Fatal("viewer refused")
	}
	defer e.c.removeViewer(v)
	for i := 0; i < 3; i++ {
		_ = e.h.Publish(context.Background(), engine.Publication{Namespace: "app-id", Channel: "c", Payload: []byte(`{}`)})
	}
	deadline := time.Now().Add(5 * time.Second)
	for v.dropped.load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d, want 2", v.dropped.load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(v.events) != 1 {
		t.Fatalf("queued %d", len(v.events))
	}
}
