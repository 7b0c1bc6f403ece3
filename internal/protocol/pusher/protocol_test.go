package pusher

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

func TestConnectionEstablishedShape(t *testing.T) {
	e := newEnv(t, nil)
	nc, err := e.dialRaw("/app/app-key?protocol=7")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nc.Close() }()
	c := &client{t: t, nc: nc}
	f := c.read()
	re := regexp.MustCompile(`^\{"event":"pusher:connection_established","data":"\{\\"socket_id\\":\\"\d+\.\d+\\",\\"activity_timeout\\":120\}"\}$`)
	if !re.MatchString(f.raw) {
		t.Fatalf("handshake frame %s", f.raw)
	}
}

func TestRefusedConnectionsCloseWithPusherCodes(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pusher.Apps[0].Limits.MaxConnections = 1 })
	cases := []struct {
		path string
		code int
	}{
		{"/app/nope?protocol=7", 4001},
		{"/app/off-key?protocol=7", 4003},
		{"/app/app-key?protocol=3", 4007},
		{"/app/app-key?protocol=9", 4007},
		{"/app/app-key?protocol=abc", 4006},
	}
	for _, tc := range cases {
		nc, err := e.dialRaw(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		c := &client{t: t, nc: nc}
		c.expectRefusal(tc.code)
		_ = nc.Close()
	}
	first := e.connect()
	_ = first
	nc, _ := e.dialRaw("/app/app-key?protocol=7")
	over := &client{t: t, nc: nc}
	over.expectRefusal(4004)
}

func TestPingPongAndBadInputKeepSocketOpen(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	c.send(`{"event":"pusher:ping","data":{}}`)
	if f := c.read(); f.raw != `{"event":"pusher:pong","data":"{}"}` {
		t.Fatalf("pong %s", f.raw)
	}
	for _, bad := range []string{`not json`, `[1,2]`, `{"data":{}}`, `{"event":"pusher:bogus"}`, `{"event":"nothing"}`,
		`{"event":"pusher:subscribe"}`, `{"event":"pusher:subscribe","data":"x"}`,
		`{"event":"pusher_internal:member_added","channel":"x","data":{}}`} {
		c.send(bad)
		f := c.read()
		if f.Event != "pusher:error" {
			t.Fatalf("%s: got %s", bad, f.raw)
		}
		var d struct {
			Code *int `json:"code"`
		}
		if json.Unmarshal(f.Data, &d) != nil || d.Code != nil {
			t.Fatalf("%s: error data %s, want code null", bad, f.Data)
		}
	}
	c.send(`{"event":"pusher:subscribe","data":{"channel":"bad name!"}}`)
	if f := c.read(); f.Event != "pusher:error" || !strings.Contains(string(f.Data), "invalid character") {
		t.Fatalf("bad name: %s", f.raw)
	}
	if f := c.read(); f.Event != "pusher:subscription_error" || f.Channel != "bad name!" {
		t.Fatalf("bad name: %s", f.raw)
	}
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.expect("pusher:pong")
}

func TestPublicPrivateAndAuthFailures(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	if f := c.join("news", ""); f.raw != `{"event":"pusher_internal:subscription_succeeded","channel":"news","data":"{}"}` {
		t.Fatalf("succeeded %s", f.raw)
	}
	c.join("private-x", "")

	c.subscribe("private-y", "app-key:"+strings.Repeat("0", 64), "")
	f := c.expect("pusher:error")
	if !strings.Contains(string(f.Data), "Invalid signature: Expected HMAC SHA256 hex digest of "+c.socketID+":private-y") {
		t.Fatalf("error %s", f.raw)
	}
	se := c.expect("pusher:subscription_error")
	if se.Channel != "private-y" || !strings.Contains(se.dataString(), `"status":401`) {
		t.Fatalf("subscription_error %s", se.raw)
	}
	c.subscribe("private-z", "", "")
	if f := c.expect("pusher:error"); !strings.Contains(string(f.Data), "Auth info required to subscribe to private-z") {
		t.Fatalf("error %s", f.raw)
	}
	// A signature for another socket is refused too.
	c.subscribe("private-w", pushersign.ChannelAuth("app-key", "app-secret", "1.1", "private-w", ""), "")
	c.expect("pusher:error")
	c.subscribe("news", "", "")
	if f := c.expect("pusher:error"); !strings.Contains(string(f.Data), "Existing subscription to channel news") {
		t.Fatalf("duplicate %s", f.raw)
	}
}

func TestPublishReachesSubscribersOnlyAndExcludesSocket(t *testing.T) {
	e := newEnv(t, nil)
	a, b, outsider := e.connect(), e.connect(), e.connect()
	a.join("news", "")
	b.join("news", "")
	ctx := context.Background()
	if err := e.srv.Trigger(ctx, e.app, TriggerEvent{Name: "update", Data: `{"x":1}`, Channels: []string{"news"}, SocketID: b.socketID}); err != nil {
		t.Fatal(err)
	}
	want := `{"event":"update","channel":"news","data":"{\"x\":1}"}`
	if f := a.read(); f.raw != want {
		t.Fatalf("a got %s", f.raw)
	}
	b.nothingBeforePong()        // excluded by socket_id
	outsider.nothingBeforePong() // not subscribed
	a.send(`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`)
	a.nothingBeforePong() // unsubscribe was processed, and has no reply
	if err := e.srv.Trigger(ctx, e.app, TriggerEvent{Name: "update", Data: "2", Channels: []string{"news"}}); err != nil {
		t.Fatal(err)
	}
	if f := b.read(); f.raw != `{"event":"update","channel":"news","data":"2"}` {
		t.Fatalf("b got %s", f.raw)
	}
	a.nothingBeforePong()
}

func TestPresenceMembersPerUser(t *testing.T) {
	e := newEnv(t, nil)
	alice1, alice2, bob := e.connect(), e.connect(), e.connect()
	aliceData := `{"user_id":"alice","user_info":{"name":"A"}}`
	f := alice1.join("presence-room", aliceData)
	if got := f.dataString(); got != `{"presence":{"ids":["alice"],"hash":{"alice":{"name":"A"}},"count":1}}` {
		t.Fatalf("presence data %s", got)
	}
	bob.join("presence-room", `{"user_id":42}`) // numeric ids are normalised to strings
	added := alice1.expect("pusher_internal:member_added")
	if added.dataString() != `{"user_id":"42"}` {
		t.Fatalf("member_added %s", added.raw)
	}
	f = alice2.join("presence-room", aliceData)
	if got := f.dataString(); got != `{"presence":{"ids":["42","alice"],"hash":{"42":null,"alice":{"name":"A"}},"count":2}}` {
		t.Fatalf("second connection's presence data %s", got)
	}
	// member_added goes out before the joiner's subscription_succeeded, so
	// the pong marker is exact here.
	bob.nothingBeforePong() // alice's second connection is not a new member
	alice1.send(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`)
	alice1.nothingBeforePong() // the leave, and any member_removed, is done
	bob.nothingBeforePong()    // alice still has a connection
	// Her last connection goes: by closing, not unsubscribing.
	if err := alice2.nc.Close(); err != nil {
		t.Fatal(err)
	}
	removed := bob.read()
	if removed.raw != `{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"alice\"}"}` {
		t.Fatalf("member_removed %s", removed.raw)
	}
	users, _ := e.srv.PresenceUsers(context.Background(), e.app, "presence-room")
	if len(users) != 1 || users[0] != "42" {
		t.Fatalf("users %v", users)
	}
}

func TestPresenceLimits(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pusher.Apps[0].Limits.MaxPresenceMembers = 1
		c.Pusher.Apps[0].Limits.MaxPresenceMemberBytes = 20
	})
	a, b := e.connect(), e.connect()
	a.join("presence-p", `{"user_id":"1"}`)
	data := `{"user_id":"2"}`
	b.subscribe("presence-p", pushersign.ChannelAuth("app-key", "app-secret", b.socketID, "presence-p", data), data)
	b.expect("pusher:error")
	if se := b.expect("pusher:subscription_error"); !strings.Contains(se.dataString(), `"status":4100`) {
		t.Fatalf("full channel %s", se.raw)
	}
	big := `{"user_id":"1","user_info":{"name":"` + strings.Repeat("x", 30) + `"}}`
	b.subscribe("presence-q", pushersign.ChannelAuth("app-key", "app-secret", b.socketID, "presence-q", big), big)
	b.expect("pusher:error")
}

func TestClientEvents(t *testing.T) {
	clock := newFakeClock()
	e := newEnvClock(t, func(c *config.Config) { c.Pusher.Apps[0].Limits.ClientEventsPerSecond = 3 }, clock.Now)
	a, b := e.connect(), e.connect()
	a.join("presence-chat", `{"user_id":"a"}`)
	b.join("presence-chat", `{"user_id":"b"}`)
	a.expect("pusher_internal:member_added")
	a.send(`{"event":"client-typing","channel":"presence-chat","data":{"x":1}}`)
	if f := b.read(); f.raw != `{"event":"client-typing","channel":"presence-chat","data":{"x":1},"user_id":"a"}` {
		t.Fatalf("b got %s", f.raw)
	}
	a.nothingBeforePong() // never echoed
	// Over the rate limit (2 tokens left, 5 sent): 4301 for each of the
	// last 3, and the socket stays open.
	for i := 0; i < 5; i++ {
		a.send(`{"event":"client-burst","channel":"presence-chat","data":{}}`)
	}
	for i := 0; i < 3; i++ {
		if f := a.read(); f.Event != "pusher:error" || !strings.Contains(string(f.Data), `"code":4301`) {
			t.Fatalf("rate limit %s", f.raw)
		}
	}
	a.nothingBeforePong()
	for i := 0; i < 2; i++ {
		if f := b.read(); f.Event != "client-burst" {
			t.Fatalf("b got %s, want the 2 bursts within the limit", f.raw)
		}
	}
	b.nothingBeforePong()
	// Public channels and channels one is not subscribed to are refused.
	a.join("public-one", "")
	clock.Advance(1100 * time.Millisecond) // refill the bucket
	a.send(`{"event":"client-x","channel":"public-one","data":{}}`)
	if f := a.read(); f.Event != "pusher:error" || !strings.Contains(string(f.Data), "only supported on private and presence channels") {
		t.Fatalf("public %s", f.raw)
	}
	a.send(`{"event":"client-x","channel":"private-never","data":{}}`)
	if f := a.read(); f.Event != "pusher:error" || !strings.Contains(string(f.Data), "not subscribed") {
		t.Fatalf("unsubscribed %s", f.raw)
	}
}

func TestClientEventsDisabled(t *testing.T) {
	off := false
	e := newEnv(t, func(c *config.Config) { c.Pusher.Apps[0].ClientEvents = &off })
	a := e.connect()
	a.join("private-c", "")
	a.send(`{"event":"client-x","channel":"private-c","data":{}}`)
	if f := a.expect("pusher:error"); !strings.Contains(string(f.Data), "enable") {
		t.Fatalf("%s", f.raw)
	}
}

func TestCacheChannels(t *testing.T) {
	e := newEnv(t, nil)
	a := e.connect()
	a.join("cache-prices", "")
	if f := a.read(); f.raw != `{"event":"pusher:cache_miss","channel":"cache-prices"}` {
		t.Fatalf("cache miss %s", f.raw)
	}
	if err := e.srv.Trigger(context.Background(), e.app, TriggerEvent{Name: "price", Data: "42", Channels: []string{"cache-prices"}}); err != nil {
		t.Fatal(err)
	}
	if f := a.read(); f.raw != `{"event":"price","channel":"cache-prices","data":"42"}` {
		t.Fatalf("live %s", f.raw)
	}
	b := e.connect()
	b.join("cache-prices", "")
	if f := b.read(); f.raw != `{"event":"price","channel":"cache-prices","data":"42"}` {
		t.Fatalf("replay %s", f.raw)
	}
}

func TestSubscriptionCount(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pusher.Apps[0].SubscriptionCount = true })
	a, b := e.connect(), e.connect()
	a.join("room", "")
	if f := a.expect("pusher_internal:subscription_count"); f.dataString() != `{"subscription_count":1}` {
		t.Fatalf("%s", f.raw)
	}
	b.join("room", "")
	if f := a.expect("pusher_internal:subscription_count"); f.dataString() != `{"subscription_count":2}` {
		t.Fatalf("%s", f.raw)
	}
	if err := b.nc.Close(); err != nil {
		t.Fatal(err)
	}
	if f := a.expect("pusher_internal:subscription_count"); f.dataString() != `{"subscription_count":1}` {
		t.Fatalf("%s", f.raw)
	}
}

func signin(c *client, userData string) {
	auth := pushersign.UserAuth("app-key", "app-secret", c.socketID, userData)
	d, _ := json.Marshal(map[string]string{"auth": auth, "user_data": userData})
	c.send(`{"event":"pusher:signin","data":` + string(d) + `}`)
}

func TestSigninWatchlistSendToUserTerminate(t *testing.T) {
	e := newEnv(t, nil)
	watcher, u1 := e.connect(), e.connect()
	signin(watcher, `{"id":"w","watchlist":["u1","u2"]}`)
	f := watcher.expect("pusher:signin_success")
	if f.dataString() != `{"user_data":"{\"id\":\"w\",\"watchlist\":[\"u1\",\"u2\"]}"}` {
		t.Fatalf("signin_success %s", f.raw)
	}
	if f := watcher.expect("pusher_internal:watchlist_events"); f.dataString() != `{"events":[{"name":"offline","user_ids":["u1","u2"]}]}` {
		t.Fatalf("initial watchlist %s", f.raw)
	}
	signin(u1, `{"id":"u1"}`)
	u1.expect("pusher:signin_success")
	if f := watcher.expect("pusher_internal:watchlist_events"); f.dataString() != `{"events":[{"name":"online","user_ids":["u1"]}]}` {
		t.Fatalf("online %s", f.raw)
	}
	// sendToUser is a publish to #server-to-user-<id>; pusher-js also subscribes explicitly.
	u1.subscribe("#server-to-user-u1", "", "")
	if err := e.srv.Trigger(context.Background(), e.app, TriggerEvent{Name: "hello", Data: "hi", Channels: []string{"#server-to-user-u1"}}); err != nil {
		t.Fatal(err)
	}
	if f := u1.expect("hello"); f.raw != `{"event":"hello","channel":"#server-to-user-u1","data":"hi"}` {
		t.Fatalf("sendToUser %s", f.raw)
	}
	// Someone else's user channel is refused.
	watcher.subscribe("#server-to-user-u1", "", "")
	watcher.expect("pusher:error")

	if err := e.srv.TerminateUser(context.Background(), e.app, "u1"); err != nil {
		t.Fatal(err)
	}
	if f := u1.expect("pusher:error"); !strings.Contains(string(f.Data), `"code":4009`) {
		t.Fatalf("terminate %s", f.raw)
	}
	u1.expectClose(4009)
	if f := watcher.expect("pusher_internal:watchlist_events"); f.dataString() != `{"events":[{"name":"offline","user_ids":["u1"]}]}` {
		t.Fatalf("offline %s", f.raw)
	}
}

func TestSigninBadSignatureCloses4009(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	c.send(`{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"x\"}"}}`)
	c.expect("pusher:error")
	c.expectClose(4009)
}

func TestPresenceIdentityFromSignin(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	signin(c, `{"id":"me","user_info":{"n":1}}`)
	c.expect("pusher:signin_success")
	f := c.join("presence-x", "") // auth over socket:channel only, no channel_data
	if f.dataString() != `{"presence":{"ids":["me"],"hash":{"me":{"n":1}},"count":1}}` {
		t.Fatalf("%s", f.raw)
	}
}

func TestPongTimeoutCloses4201(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pusher.ActivityTimeout = config.Duration(200 * time.Millisecond)
		c.Pusher.PongTimeout = config.Duration(200 * time.Millisecond)
	})
	c := e.connect()
	c.expect("pusher:ping")
	c.expectClose(4201)
}

func TestPingAnsweredKeepsConnection(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pusher.ActivityTimeout = config.Duration(150 * time.Millisecond)
		c.Pusher.PongTimeout = config.Duration(150 * time.Millisecond)
	})
	c := e.connect()
	for i := 0; i < 3; i++ {
		c.expect("pusher:ping")
		c.send(`{"event":"pusher:pong","data":{}}`)
	}
}

func TestUserAuthenticationTimeout(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pusher.Apps[0].UserAuthentication = true
		c.Pusher.Apps[0].AuthTimeout = config.Duration(200 * time.Millisecond)
	})
	lazy, good := e.connect(), e.connect()
	good.join("private-ok", "")
	lazy.expect("pusher:error")
	lazy.expectClose(4009)
	good.expectNothing(300 * time.Millisecond) // past auth_timeout: still open
	good.nothingBeforePong()
}

func TestOversizeMessageCloses1009(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Limits.MaxMessageBytes = 1000 })
	c := e.connect()
	c.send(`{"event":"client-x","channel":"private-a","data":"` + strings.Repeat("x", 2000) + `"}`)
	c.expectClose(1009)
}

func TestDrainSends4200(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect()
	go e.srv.Drain(context.Background())
	if f := c.expect("pusher:error"); !strings.Contains(string(f.Data), `"code":4200`) {
		t.Fatalf("%s", f.raw)
	}
	c.expectClose(4200)
}

func TestAppsAreIsolated(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Pusher.Apps = append(c.Pusher.Apps, config.App{ID: "two", Key: "two-key", Secret: "two-secret"})
	})
	a := e.connect()
	a.join("shared-name", "")
	other := e.srv.Apps().ByID("two")
	ctx := context.Background()
	if err := e.srv.Trigger(ctx, other, TriggerEvent{Name: "x", Data: "y", Channels: []string{"shared-name"}}); err != nil {
		t.Fatal(err)
	}
	// The same channel name on a's own app reaches a, and is the first frame:
	// the other app's event never came.
	if err := e.srv.Trigger(ctx, e.app, TriggerEvent{Name: "x", Data: "mine", Channels: []string{"shared-name"}}); err != nil {
		t.Fatal(err)
	}
	if f := a.read(); f.raw != `{"event":"x","channel":"shared-name","data":"mine"}` {
		t.Fatalf("a got %s", f.raw)
	}
	a.nothingBeforePong()
}
