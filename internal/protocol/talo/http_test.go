package talo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

// TestHTTPCheckOrder: authentication, then validation (400), then scopes
// (403), then the x-talo-alias player (404), then the channel (404).
func TestHTTPCheckOrder(t *testing.T) {
	e := newEnv(t, nil)
	none := e.key("read:players")
	full := e.key(playerScopes...)
	p := e.identify(full, "username", "ann")
	alias := fmt.Sprint(p.aliasID)

	e.do("GET", "/v1/game-channels", "", "").expect(t, 401, `{"message":"Authentication Error"}`)
	e.do("GET", "/v1/game-channels", "not.a.jwt", "").expect(t, 401, `{"message":"Authentication Error"}`)
	e.do("POST", "/v1/game-channels", none, `{"name":"x"}`).
		expect(t, 400, `{"errors":{"x-talo-alias":["x-talo-alias is missing from the request headers"]}}`)
	e.do("POST", "/v1/game-channels", none, `{}`, "X-Talo-Alias", alias).
		expect(t, 400, `{"errors":{"name":["name is missing from the request body"]}}`)
	e.do("POST", "/v1/game-channels", none, `{"name":"x"}`, "X-Talo-Alias", alias).
		expect(t, 403, `{"message":"Missing access key scope(s): write:gameChannels"}`)
	e.do("POST", "/v1/game-channels", full, `{"name":"x"}`, "X-Talo-Alias", "999").expect(t, 404, `{"message":"Player not found"}`)
	e.do("GET", "/v1/game-channels/abc", none, "").expect(t, 400, `{"errors":{"id":["Invalid input: expected number, received NaN"]}}`)
	e.do("POST", "/v1/game-channels", full, `{"name":7,"private":"yes"}`, "X-Talo-Alias", "ann").
		expect(t, 400, `{"errors":{"name":["Invalid input: expected string, received number"],"private":["Invalid input: expected boolean, received string"],"x-talo-alias":["x-talo-alias header must be a numeric string"]}}`)
	e.do("GET", "/v1/game-channels/7", none, "").expect(t, 403, `{"message":"Missing access key scope(s): read:gameChannels"}`)
	e.do("GET", "/v1/game-channels/7", full, "").expect(t, 404, `{"message":"Channel not found"}`)
	e.do("POST", "/v1/game-channels/7/join", full, "", "X-Talo-Alias", alias).expect(t, 404, `{"message":"Channel not found"}`)
	e.do("GET", "/v1/players/identify?service=username", full, "").
		expect(t, 400, `{"errors":{"identifier":["identifier is missing from the request query"]}}`)
	e.do("GET", "/v1/players/identify?service=username&identifier=new", none, "").
		expect(t, 404, `{"message":"Player not found. Use an access key with the write:players scope to automatically create players"}`)
	e.do("GET", "/v1/players/identify?service=talo&identifier=new", full, "").
		expect(t, 404, `{"message":"Player not found: Talo aliases must be created using the /v1/players/auth API"}`)
	e.do("POST", "/v1/players/socket-token", none, "", "X-Talo-Alias", alias).
		expect(t, 403, `{"message":"Missing access key scope(s): write:players"}`)
	e.do("GET", "/v1/players/presence/not-a-uuid", full, "").expect(t, 400, `{"errors":{"playerId":["playerId must be a valid UUID"]}}`)
	e.do("GET", "/v1/players/presence/6c6ef345-0ac3-4edc-a221-b807fbbac4ac", full, "").expect(t, 404, `{"message":"Player not found"}`)
	// Never had presence: offline, no alias, updatedAt now.
	e.do("GET", "/v1/players/presence/"+p.playerID, full, "").
		expect(t, 200, `{"presence":{"playerAlias":null,"online":false,"customStatus":"","updatedAt":"`+fixedISO+`"}}`)
	// Trailing slash stripped (Godot calls /v1/game-config/).
	e.do("GET", "/v1/game-config/", e.key("read:gameConfig"), "").expect(t, 200, `{"config":[]}`)
	e.do("GET", "/v1/nothing", full, "").expect(t, 404, `{"message":"Not Found"}`)

	// Channel rules.
	e.do("POST", "/v1/game-channels", full, `{"name":"private","private":true}`, "X-Talo-Alias", alias).json(t, &struct{}{})
	bob := e.identify(full, "username", "bob")
	bobAlias := fmt.Sprint(bob.aliasID)
	e.do("POST", "/v1/game-channels/1/join", full, "", "X-Talo-Alias", bobAlias).expect(t, 403, `{"message":"This channel is private"}`)
	e.do("PUT", "/v1/game-channels/1", full, `{"name":"mine"}`, "X-Talo-Alias", bobAlias).expect(t, 403, `{"message":"This player is not the owner of the channel"}`)
	e.do("DELETE", "/v1/game-channels/1", full, "", "X-Talo-Alias", bobAlias).expect(t, 403, `{"message":"This player is not the owner of the channel"}`)
	e.do("GET", "/v1/game-channels/1/members", full, "", "X-Talo-Alias", bobAlias).expect(t, 403, `{"message":"This player is not a member of the channel"}`)
	e.do("POST", "/v1/game-channels/1/invite", full, `{"inviteeAliasId":`+alias+`}`, "X-Talo-Alias", alias).expect(t, 400, `{"message":"Players cannot invite themselves"}`)
	e.do("POST", "/v1/game-channels/1/invite", full, `{"inviteeAliasId":999}`, "X-Talo-Alias", alias).expect(t, 404, `{"message":"Invitee not found"}`)
	e.do("POST", "/v1/game-channels/1/invite", full, `{"inviteeAliasId":`+bobAlias+`}`, "X-Talo-Alias", alias).expect(t, 204, "")
	e.do("PUT", "/v1/game-channels/1", full, `{"ownerAliasId":999}`, "X-Talo-Alias", alias).expect(t, 404, `{"message":"New owner not found"}`)
	long := strings.Repeat("v", 600)
	e.do("POST", "/v1/game-channels", full, `{"name":"x","props":[{"key":"k","value":"`+long+`"}]}`, "X-Talo-Alias", alias).
		expect(t, 400, `{"errors":{"props":["Prop value length (600) exceeds 512 characters"]},"rejectedProps":[{"key":"k","error":"PROP_VALUE_TOO_LONG","message":"Prop value length (600) exceeds 512 characters"}]}`)
	e.do("GET", "/v1/game-channels/1/storage/list", full, "", "X-Talo-Alias", alias).
		expect(t, 400, `{"errors":{"propKeys":["propKeys is missing from the request query"]}}`)
}

// TestHTTPRateLimit: the auth routes allow HTTPLimitAuth per window per
// IP, then 429 with Retry-After; the health check is exempt.
func TestHTTPRateLimit(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) {
		o.DisableRateLimits = false
		o.HTTPLimitAuth = 2
		o.HTTPLimitDefault = 3
		o.HTTPLimitWindow = time.Hour
	})
	key := e.key("read:gameChannels")
	e.ticket(key)
	e.ticket(key)
	r := e.do("POST", "/v1/socket-tickets", key, "")
	r.expect(t, 429, `{"message":"Too many requests"}`)
	if r.header.Get("Retry-After") != "3600" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	for range 3 {
		e.do("GET", "/v1/game-channels", key, "").expect(t, 200, `{"channels":[],"count":0,"itemsPerPage":50,"isLastPage":true}`)
	}
	e.do("GET", "/v1/game-channels", key, "").expect(t, 429, `{"message":"Too many requests"}`)
	for range 5 {
		e.do("GET", "/v1/health-check", key, "").expect(t, 204, "")
	}
}

// TestAPIPrefix: with APIPrefix = SocketPath a game uses one base URL for
// api_url and socket_url.
func TestAPIPrefix(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) { o.APIPrefix = "/talo" })
	e.do("GET", "/talo/public/health", "", "").expect(t, 204, "")
	key := e.key("read:gameConfig")
	e.do("GET", "/talo/v1/game-config/", key, "").expect(t, 200, `{"config":[]}`)
	r := e.do("POST", "/talo/v1/socket-tickets", key, "")
	var v struct{ Ticket string }
	r.json(t, &v)
	c := e.dial("/talo/?ticket=" + v.Ticket)
	c.expect(`{"res":"v1.connected","data":{}}`)
	// Live config reaches read:gameConfig sockets without identification.
	on, meta := "on", "x"
	if err := e.srv.SetLiveConfig(context.Background(), e.game, "META_hidden", &meta); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"res":"v1.live-config.updated","data":{"config":[]}}`)
	if err := e.srv.SetLiveConfig(context.Background(), e.game, "mode", &on); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"res":"v1.live-config.updated","data":{"config":[{"key":"mode","value":"on"}]}}`)
	e.do("GET", "/talo/v1/game-config", key, "").expect(t, 200, `{"config":[{"key":"mode","value":"on"}]}`)
}

// TestDrain closes every socket with 1001 and refuses new ones.
func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key("read:players")
	c := e.connect(key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Drain(ctx)
	if code, reason := c.expectClosed(); code != 1001 || reason != "server shutting down" {
		t.Fatalf("close %d %q", code, reason)
	}
	if e.srv.Connections() != 0 {
		t.Fatal("connections left after Drain")
	}
	open := e.metrics.Value("switchboard_connections", "protocol", "talo")
	total := e.metrics.Value("switchboard_connections_total", "protocol", "talo")
	if open != 0 || total != 1 {
		t.Fatalf("connections gauge %v, total %v", open, total)
	}
	// New sockets are refused while draining.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	dialer := ws.Dialer{}
	if _, _, _, err := dialer.Dial(ctx2, e.wsURL+"/talo/?ticket="+e.ticket(key)); err == nil {
		t.Fatal("socket accepted while draining")
	}
}

// TestCORS: browser builds get CORS headers and preflights are answered.
func TestCORS(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("OPTIONS", "/v1/socket-tickets", "", "", "Origin", "https://game.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,x-talo-dev-build")
	r.expect(t, 204, "")
	if r.header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "X-Talo-Alias") {
		t.Fatalf("preflight headers %v", r.header)
	}
	r = e.do("GET", "/public/health", "", "", "Origin", "https://game.example")
	if r.code != 204 || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("health %d %v", r.code, r.header)
	}
	e2 := newEnv(t, func(o *talo.Options) { o.AllowedOrigins = []string{"https://mine.example"} })
	if r := e2.do("GET", "/public/health", "", "", "Origin", "https://other.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", r.header)
	}
	if r := e2.do("GET", "/public/health", "", "", "Origin", "https://mine.example"); r.header.Get("Access-Control-Allow-Origin") != "https://mine.example" {
		t.Fatalf("own origin refused: %v", r.header)
	}
}
