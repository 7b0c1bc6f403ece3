package talo_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

func errFrame(req, message, code string, cause ...string) string {
	c := ""
	if len(cause) > 0 {
		c = fmt.Sprintf(`,"cause":%q`, cause[0])
	}
	return fmt.Sprintf(`{"res":"v1.error","data":{"req":"%s","message":"%s","errorCode":"%s"%s}}`, req, message, code, c)
}

// TestErrorsAndCheckOrder sends each bad input and asserts the exact
// v1.error, in the router's order: JSON, envelope, player, scopes, data,
// handler. No error closes the socket.
func TestErrorsAndCheckOrder(t *testing.T) {
	e := newEnv(t, nil)
	// A key without write:gameChannels or read:players.
	narrow := e.key("read:gameChannels")
	c := e.connect(narrow)
	for _, tc := range []struct{ send, want string }{
		{"hello", errFrame("unknown", "An error occurred while routing the message", "ROUTING_ERROR")},
		{"", errFrame("unknown", "An error occurred while routing the message", "ROUTING_ERROR")},
		{`{"req":"v1.channels.message","data":{}`, errFrame("unknown", "An error occurred while routing the message", "ROUTING_ERROR")},
		{`{"req":"v1.nope","data":{}}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":"v1.nope","data":{}}`)},
		{`{"req":"v1.players.identified","data":{}}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":"v1.players.identified","data":{}}`)},
		{`{"req":"v1.channels.message"}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":"v1.channels.message"}`)},
		{`{"req":"v1.channels.message","data":[]}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":"v1.channels.message","data":[]}`)},
		{`{"req":"v1.channels.message","data":null}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":"v1.channels.message","data":null}`)},
		{`[1,2]`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `[1,2]`)},
		{`"v1.heartbeat"`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `"v1.heartbeat"`)},
		{`{"req":7,"data":{}}`, errFrame("unknown", "Invalid message request", "INVALID_MESSAGE", `{"req":7,"data":{}}`)},
		// Player before scopes: this key lacks write:gameChannels too.
		{`{"req":"v1.channels.message","data":{}}`, errFrame("v1.channels.message", "You must identify a player before sending this request", "NO_PLAYER_FOUND")},
		{`{"req":"v1.player-relationships.broadcast","data":{"message":"x"}}`, errFrame("v1.player-relationships.broadcast", "You must identify a player before sending this request", "NO_PLAYER_FOUND")},
		// Scopes before data.
		{`{"req":"v1.players.identify","data":{}}`, errFrame("v1.players.identify", "Missing access key scope(s): read:players", "MISSING_ACCESS_KEY_SCOPES")},
	} {
		c.send(tc.send)
		c.expect(tc.want)
	}

	full := e.key(playerScopes...)
	f := e.connect(full)
	for _, tc := range []struct{ send, want string }{
		{`{"req":"v1.players.identify","data":{}}`, errFrame("v1.players.identify", "Invalid message data for request", "INVALID_MESSAGE_DATA", `{}`)},
		{`{"req":"v1.players.identify","data": {"playerAliasId": "1", "socketToken": "x"}}`,
			errFrame("v1.players.identify", "Invalid message data for request", "INVALID_MESSAGE_DATA", `{"playerAliasId":"1","socketToken":"x"}`)},
		{`{"req":"v1.players.identify","data":{"playerAliasId":1,"socketToken":"x","sessionToken":null}}`,
			errFrame("v1.players.identify", "Invalid message data for request", "INVALID_MESSAGE_DATA", `{"playerAliasId":1,"socketToken":"x","sessionToken":null}`)},
		{`{"req":"v1.players.identify","data":{"playerAliasId":1,"socketToken":"wrong"}}`,
			errFrame("v1.players.identify", "Invalid socket token", "INVALID_SOCKET_TOKEN")},
	} {
		f.send(tc.send)
		f.expect(tc.want)
	}

	p := e.identify(full, "username", "ann")
	identifySocket(t, f, p, "ann")
	for _, tc := range []struct{ send, want string }{
		{`{"req":"v1.channels.message","data":{"channel":{},"message":"x"}}`,
			errFrame("v1.channels.message", "Invalid message data for request", "INVALID_MESSAGE_DATA", `{"channel":{},"message":"x"}`)},
		{`{"req":"v1.channels.message","data":{"channel":{"id":99},"message":"x","extra":true}}`,
			errFrame("v1.channels.message", "An error occurred while processing the message", "LISTENER_ERROR", "Channel not found")},
		// Identified, but the key lacks write:playerBroadcasts: scopes checked before data.
		{`{"req":"v1.player-relationships.broadcast","data":{}}`,
			errFrame("v1.player-relationships.broadcast", "Missing access key scope(s): write:playerBroadcasts", "MISSING_ACCESS_KEY_SCOPES")},
	} {
		f.send(tc.send)
		f.expect(tc.want)
	}
	// A member of another player's channel? No: not a member.
	other := e.identify(full, "username", "other")
	e.do("POST", "/v1/game-channels", full, `{"name":"theirs"}`, "X-Talo-Alias", fmt.Sprint(other.aliasID)).json(t, &struct{}{})
	f.send(`{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"x"}}`)
	f.expect(errFrame("v1.channels.message", "An error occurred while processing the message", "LISTENER_ERROR", "Player not in channel"))
	// An alias of another game fails the lookup (after the token check).
	f.send(`{"req":"v1.players.identify","data":{"playerAliasId":1.5,"socketToken":"x"}}`)
	f.expect(errFrame("v1.players.identify", "Invalid socket token", "INVALID_SOCKET_TOKEN"))
	f.silent()
}

// TestTickets: a missing, unknown, used or revoked ticket completes the
// handshake and is closed with 3000 at once.
func TestTickets(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key("read:players")
	for _, path := range []string{"/talo", "/talo/", "/talo/?ticket=", "/talo/?ticket=6c6ef345-0ac3-4edc-a221-b807fbbac4ac"} {
		c := e.dial(path)
		if code, reason := c.expectClosed(); code != 3000 || reason != "" {
			t.Fatalf("%s: close %d %q", path, code, reason)
		}
	}
	ticket := e.ticket(key)
	c := e.dial("/talo/socket/deeper?ticket=" + ticket) // any path below /talo
	c.expect(`{"res":"v1.connected","data":{}}`)
	again := e.dial("/talo/?ticket=" + ticket)
	if code, _ := again.expectClosed(); code != 3000 {
		t.Fatalf("reused ticket: close %d", code)
	}
	revoked := e.key("read:players")
	ticket = e.ticket(revoked)
	if err := e.srv.RevokeKey(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	late := e.dial("/talo/?ticket=" + ticket)
	if code, _ := late.expectClosed(); code != 3000 {
		t.Fatalf("revoked key: close %d", code)
	}
	e.do("POST", "/v1/socket-tickets", revoked, "").expect(t, 401, `{"message":"Authentication Error"}`)
	// The first socket is unaffected by all this.
	c.silent()
	for reason, want := range map[string]float64{"ticket_missing": 3, "ticket_unknown": 2, "ticket_key_revoked": 1} {
		if got := e.errors(reason); got != want {
			t.Fatalf("errors{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestTicketSingleUseConcurrent: of 10 concurrent connects with one
// ticket, exactly one is accepted.
func TestTicketSingleUseConcurrent(t *testing.T) {
	e := newEnv(t, nil)
	ticket := e.ticket(e.key("read:players"))
	var wg sync.WaitGroup
	results := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.dial("/talo/?ticket=" + ticket)
			select {
			case f := <-c.frames:
				results <- string(f.payload)
			case <-c.done:
				c.closeMu.Lock()
				defer c.closeMu.Unlock()
				if c.closeAt != nil && len(c.closeAt.payload) >= 2 && c.closeAt.payload[0] == 0x0b && c.closeAt.payload[1] == 0xb8 {
					results <- "3000"
					return
				}
				results <- "closed without 3000"
			}
		}()
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts[`{"res":"v1.connected","data":{}}`] != 1 || counts["3000"] != 9 {
		t.Fatalf("results %v", counts)
	}
}

// TestBinaryAndInvalidUTF8: a binary frame is routed like text (the
// reference reads frames as strings); a text frame that is not UTF-8 is a
// WebSocket protocol error (1007).
func TestBinaryAndInvalidUTF8(t *testing.T) {
	e := newEnv(t, nil)
	c := e.connect(e.key("read:players"))
	if err := c.write(ws.NewBinaryFrame([]byte("v1.heartbeat"))); err != nil {
		t.Fatal(err)
	}
	c.expect("v1.heartbeat")
	if err := c.write(ws.NewBinaryFrame([]byte{0xff, 0xfe, '{'})); err != nil {
		t.Fatal(err)
	}
	c.expect(errFrame("unknown", "An error occurred while routing the message", "ROUTING_ERROR"))
	if err := c.write(ws.NewBinaryFrame([]byte("{\"req\":\"v1.channels.message\",\"data\":{\"m\":\"\xff\"}}"))); err != nil {
		t.Fatal(err)
	}
	c.expect(errFrame("v1.channels.message", "You must identify a player before sending this request", "NO_PLAYER_FOUND"))
	if err := c.write(ws.NewTextFrame([]byte{'"', 0xc3, '"'})); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.expectClosed(); code != 1007 {
		t.Fatalf("invalid UTF-8 text: close %d", code)
	}
}

// TestSocketRateLimit: over the limit, RATE_LIMIT_EXCEEDED three times,
// then close 1008 "RATE_LIMIT_EXCEEDED". Heartbeats count.
func TestSocketRateLimit(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) { o.SocketLimitUnidentified = 2 })
	c := e.connect(e.key("read:players"))
	c.send("v1.heartbeat")
	c.expect("v1.heartbeat")
	c.send("x")
	c.expect(errFrame("unknown", "An error occurred while routing the message", "ROUTING_ERROR"))
	for range 3 {
		c.send("v1.heartbeat")
		c.expect(errFrame("unknown", "Rate limit exceeded", "RATE_LIMIT_EXCEEDED"))
	}
	c.send("v1.heartbeat")
	if code, reason := c.expectClosed(); code != 1008 || reason != "RATE_LIMIT_EXCEEDED" {
		t.Fatalf("close %d %q", code, reason)
	}
}
