package talo_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

// TestTemporaryMembership: a player whose socket closes leaves its
// temporary channels (reason 1); with autoCleanup the owner leaving
// deletes the channel (player-left, then deleted); presence last.
func TestTemporaryMembership(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	ann, bob := e.identify(key, "username", "ann"), e.identify(key, "username", "bob")
	a, b := e.connect(key), e.connect(key)
	annOnline := identifySocket(t, a, ann, "ann")
	bobOnline := identifySocket(t, b, bob, "bob")
	a.expect(presenceUpdated(bobOnline, true, "", true, true))

	e.do("POST", "/v1/game-channels", key, `{"name":"lobby","autoCleanup":true,"temporaryMembership":true}`, "X-Talo-Alias", fmt.Sprint(bob.aliasID)).json(t, &struct{}{})
	b.expectPrefix(`{"res":"v1.channels.player-joined"`)
	e.do("POST", "/v1/game-channels/1/join", key, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID)).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.channels.player-joined"`)
	b.expectPrefix(`{"res":"v1.channels.player-joined"`)

	if err := b.conn.Close(); err != nil { // the owner goes
		t.Fatal(err)
	}
	ch := strings.Replace(channelJSON(1, "lobby", bobOnline, 0), `"autoCleanup":false`, `"autoCleanup":true`, 1)
	ch = strings.Replace(ch, `"temporaryMembership":false`, `"temporaryMembership":true`, 1)
	// The owner's alias as stored when it left: offline already.
	bobOffline := aliasJSON(bob, "bob", presenceLite(false, ""))
	chOff := strings.Replace(ch, bobOnline, bobOffline, 1)
	a.expect(`{"res":"v1.channels.player-left","data":{"channel":` + chOff + `,"playerAlias":` + bobOffline + `,"meta":{"reason":1}}}`)
	a.expect(`{"res":"v1.channels.deleted","data":{"channel":` + chOff + `}}`)
	a.expect(presenceUpdated(bobOffline, false, "", true, true))
	e.do("GET", "/v1/game-channels/1", key, "").expect(t, 404, `{"message":"Channel not found"}`)
	_ = annOnline
}

// TestChannelManagement: ownership transfer (Godot's ownerAliasId and
// Unity's newOwnerAliasId), updated with changedProperties, storage, delete.
func TestChannelManagement(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	ann, bob := e.identify(key, "username", "ann"), e.identify(key, "username", "bob")
	a, b := e.connect(key), e.connect(key)
	annOnline := identifySocket(t, a, ann, "ann")
	bobOnline := identifySocket(t, b, bob, "bob")
	a.expect(presenceUpdated(bobOnline, true, "", true, true))
	annH, bobH := fmt.Sprint(ann.aliasID), fmt.Sprint(bob.aliasID)
	e.do("POST", "/v1/game-channels", key, `{"name":"guild"}`, "X-Talo-Alias", annH).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.channels.player-joined"`)

	// Unity's plain update carries newOwnerAliasId 0: no transfer.
	r0 := e.do("PUT", "/v1/game-channels/1", key, `{"name":"","newOwnerAliasId":0,"props":[]}`, "X-Talo-Alias", annH)
	ch0 := channelJSON(1, "guild", annOnline, 0)
	r0.expect(t, 200, `{"channel":`+withCount(ch0, 1)+`}`)
	a.expect(`{"res":"v1.channels.updated","data":{"channel":` + ch0 + `,"changedProperties":["props"]}}`)
	// Unity's update: name "" is ignored, props [] counts as changed, and
	// newOwnerAliasId transfers (bob joins silently).
	r := e.do("PUT", "/v1/game-channels/1", key, `{"name":"","props":[],"newOwnerAliasId":`+bobH+`}`, "X-Talo-Alias", annH)
	ch := channelJSON(1, "guild", bobOnline, 0)
	r.expect(t, 200, `{"channel":`+withCount(ch, 2)+`}`)
	transferred := `{"res":"v1.channels.ownership-transferred","data":{"channel":` + ch + `,"newOwner":` + bobOnline + `}}`
	a.expect(transferred)
	b.expect(transferred)
	updated := `{"res":"v1.channels.updated","data":{"channel":` + ch + `,"changedProperties":["props","ownerAliasId"]}}`
	a.expect(updated)
	b.expect(updated)

	// Storage: upsert, arrays, failed props, storage.updated to members.
	long := strings.Repeat("x", 513)
	r = e.do("PUT", "/v1/game-channels/1/storage", key, `{"props":[{"key":"motd","value":"hello"},{"key":"tags[]","value":"[\"a\",\"b\",\"a\"]"},{"key":"big","value":"`+long+`"}]}`, "X-Talo-Alias", annH)
	sp := func(k, v string) string {
		return fmt.Sprintf(`{"key":"%s","value":"%s","createdBy":%s,"lastUpdatedBy":%[3]s,"createdAt":"%[4]s","updatedAt":"%[4]s"}`, k, v, annOnline, fixedISO)
	}
	ups := `[` + sp("motd", "hello") + `,` + sp("tags[]", "a") + `,` + sp("tags[]", "b") + `]`
	r.expect(t, 200, `{"channel":`+withCount(ch, 2)+`,"upsertedProps":`+ups+`,"deletedProps":[],"failedProps":[{"key":"big","error":"PROP_VALUE_TOO_LONG","message":"Prop value length (513) exceeds 512 characters"}]}`)
	su := `{"res":"v1.channels.storage.updated","data":{"channel":` + ch + `,"upsertedProps":` + ups + `,"deletedProps":[]}}`
	a.expect(su)
	b.expect(su)
	e.do("GET", "/v1/game-channels/1/storage?propKey=tags[]", key, "", "X-Talo-Alias", bobH).
		expect(t, 200, `{"prop":`+sp("tags[]", `[\"a\",\"b\"]`)+`}`)
	e.do("GET", "/v1/game-channels/1/storage?propKey=none", key, "", "X-Talo-Alias", bobH).expect(t, 200, `{"prop":null}`)
	e.do("GET", "/v1/game-channels/1/storage/list?propKeys=motd&propKeys=tags[]&propKeys=none", key, "", "X-Talo-Alias", bobH).
		expect(t, 200, `{"props":[`+sp("motd", "hello")+`,`+sp("tags[]", "a")+`,`+sp("tags[]", "b")+`]}`)

	// Delete by the new owner: deleted to every member.
	e.do("DELETE", "/v1/game-channels/1", key, "", "X-Talo-Alias", annH).expect(t, 403, `{"message":"This player is not the owner of the channel"}`)
	e.do("DELETE", "/v1/game-channels/1", key, "", "X-Talo-Alias", bobH).expect(t, 204, "")
	deleted := `{"res":"v1.channels.deleted","data":{"channel":` + ch + `}}`
	a.expect(deleted)
	b.expect(deleted)
}

// TestScopeFiltering: pushes reach only connections whose key holds the
// read scope; presence needs identification.
func TestScopeFiltering(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	blind := e.key("read:players", "write:gameChannels") // no read:gameChannels, no read:playerPresence
	ann, bob := e.identify(key, "username", "ann"), e.identify(key, "username", "bob")
	a := e.connect(key)
	b := e.connect(blind)
	watcher := e.connect(key) // never identifies: gets no presence
	identifySocket(t, a, ann, "ann")
	b.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s"}}`, bob.aliasID, bob.token))
	b.expectPrefix(`{"res":"v1.players.identify.success"`)
	a.expectPrefix(`{"res":"v1.players.presence.updated"`)
	e.do("POST", "/v1/game-channels", key, `{"name":"c"}`, "X-Talo-Alias", fmt.Sprint(ann.aliasID)).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.channels.player-joined"`)
	e.do("POST", "/v1/game-channels/1/join", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.channels.player-joined"`)
	b.send(`{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"from bob"}}`)
	a.expectPrefix(`{"res":"v1.channels.message"`)
	b.silent()
	watcher.silent()
}

// TestRelationshipsBroadcast: a broadcast reaches confirmed subscribers
// with read:playerBroadcasts only.
func TestRelationshipsBroadcast(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(append(playerScopes, "read:playerRelationships", "write:playerRelationships", "read:playerBroadcasts", "write:playerBroadcasts")...)
	ann, bob, cat := e.identify(key, "username", "ann"), e.identify(key, "username", "bob"), e.identify(key, "username", "cat")
	a, b, c := e.connect(key), e.connect(key), e.connect(key)
	annOnline := identifySocket(t, a, ann, "ann")
	bobOnline := identifySocket(t, b, bob, "bob")
	a.expectPrefix(`{"res":"v1.players.presence.updated"`)
	identifySocket(t, c, cat, "cat")
	a.expectPrefix(`{"res":"v1.players.presence.updated"`)
	b.expectPrefix(`{"res":"v1.players.presence.updated"`)
	// bob subscribes to ann; ann is told; ann confirms; bob is told.
	r := e.do("POST", "/v1/players/relationships", key, `{"aliasId":`+fmt.Sprint(ann.aliasID)+`,"relationshipType":"unidirectional"}`, "X-Talo-Alias", fmt.Sprint(bob.aliasID))
	sub := fmt.Sprintf(`{"id":1,"subscriber":%s,"subscribedTo":%s,"confirmed":%%t,"relationshipType":"unidirectional","createdAt":"%s","updatedAt":"%[3]s"}`, bobOnline, annOnline, fixedISO)
	r.expect(t, 200, `{"subscription":`+fmt.Sprintf(sub, false)+`}`)
	a.expect(`{"res":"v1.player-relationships.subscription-created","data":{"subscription":` + fmt.Sprintf(sub, false) + `}}`)
	e.do("PUT", "/v1/players/relationships/1/confirm", key, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID)).expect(t, 200, `{"subscription":`+fmt.Sprintf(sub, true)+`}`)
	b.expect(`{"res":"v1.player-relationships.subscription-confirmed","data":{"subscription":` + fmt.Sprintf(sub, true) + `}}`)
	a.send(`{"req":"v1.player-relationships.broadcast","data":{"message":"gg"}}`)
	b.expect(`{"res":"v1.player-relationships.broadcast","data":{"message":"gg","playerAlias":` + annOnline + `}}`)
	a.silent()
	c.silent()
	e.do("GET", "/v1/players/relationships/subscribers?confirmed=true", key, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID)).
		expect(t, 200, `{"subscriptions":[`+fmt.Sprintf(sub, true)+`],"count":1,"itemsPerPage":50,"isLastPage":true}`)
	// Only the subscriber deletes; both parties are told.
	e.do("DELETE", "/v1/players/relationships/1", key, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID)).expect(t, 404, `{"message":"Subscription not found"}`)
	e.do("DELETE", "/v1/players/relationships/1", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).expect(t, 204, "")
	deleted := `{"res":"v1.player-relationships.subscription-deleted","data":{"subscription":` + fmt.Sprintf(sub, true) + `,"reciprocalSubscription":null}}`
	b.expect(deleted)
	a.expect(deleted)
	a.send(`{"req":"v1.player-relationships.broadcast","data":{"message":"anyone?"}}`)
	a.silent()
	b.silent()

	// Bidirectional: confirming creates the confirmed reciprocal, so both
	// hear each other's broadcasts.
	e.do("POST", "/v1/players/relationships", key, `{"aliasId":`+fmt.Sprint(bob.aliasID)+`,"relationshipType":"bidirectional"}`, "X-Talo-Alias", fmt.Sprint(cat.aliasID)).json(t, &struct{}{})
	b.expectPrefix(`{"res":"v1.player-relationships.subscription-created"`)
	e.do("PUT", "/v1/players/relationships/2/confirm", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).json(t, &struct{}{})
	c.expectPrefix(`{"res":"v1.player-relationships.subscription-confirmed"`)
	c.send(`{"req":"v1.player-relationships.broadcast","data":{"message":"from cat"}}`)
	b.expectPrefix(`{"res":"v1.player-relationships.broadcast","data":{"message":"from cat"`)
	b.send(`{"req":"v1.player-relationships.broadcast","data":{"message":"from bob"}}`)
	c.expectPrefix(`{"res":"v1.player-relationships.broadcast","data":{"message":"from bob"`)
	a.silent()
}

// TestRequestSigning: once a verifying game's connection is identified,
// every frame must carry a valid, fresh, unused signature.
func TestRequestSigning(t *testing.T) {
	e := newEnv(t, nil)
	vk, err := e.srv.VerificationKey(context.Background(), e.game)
	if err != nil {
		t.Fatal(err)
	}
	version, secret, _ := strings.Cut(vk, ":")
	if version != "1" || len(secret) != 64 {
		t.Fatalf("verification key %q", vk)
	}
	key := e.key(playerScopes...)
	p := e.identify(key, "username", "ann")
	c := e.connect(key)
	annOnline := identifySocket(t, c, p, "ann") // identify itself is never signed
	e.do("POST", "/v1/game-channels", key, `{"name":"c"}`, "X-Talo-Alias", fmt.Sprint(p.aliasID)).
		expect(t, 401, `{"message":"Invalid signature","errorCode":"INVALID_SIGNATURE"}`)
	body := `{"name":"c"}`
	now := fixedNow.UnixMilli()
	e.do("POST", "/v1/game-channels", key, body, "X-Talo-Alias", fmt.Sprint(p.aliasID), "X-Talo-Signature", talo.Sign(1, secret, "http-1", now, []byte(body))).json(t, &struct{}{})
	c.expectPrefix(`{"res":"v1.channels.player-joined"`)

	msg := `{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"signed"}}`
	sigErr := errFrame("v1.channels.message", "Invalid signature", "INVALID_SIGNATURE")
	c.send(msg) // no signature line
	c.expect(sigErr)
	c.send(talo.Sign(1, "wrong", "r1", now, []byte(msg)) + "\n" + msg)
	c.expect(sigErr)
	c.send(talo.Sign(2, secret, "r1", now, []byte(msg)) + "\n" + msg) // unknown version
	c.expect(sigErr)
	c.send(talo.Sign(1, secret, "r1", now-301_000, []byte(msg)) + "\n" + msg) // too old
	c.expect(sigErr)
	c.send(talo.Sign(1, secret, "r1", now, []byte(`{"other":1}`)) + "\n" + msg) // payload hash
	c.expect(sigErr)
	good := talo.Sign(1, secret, "r1", now, []byte(msg)) + "\n" + msg
	c.send(good)
	c.expect(`{"res":"v1.channels.message","data":{"channel":` + channelJSON(1, "c", annOnline, 0) + `,"message":"signed","playerAlias":` + annOnline + `}}`)
	c.send(good) // replayed rid
	c.expect(sigErr)
	c.send(talo.Sign(1, secret, "r2", now-61_000, []byte(msg)) + "\n" + msg) // behind the latest seen
	c.expect(sigErr)
	// The heartbeat is checked before signatures.
	c.send("v1.heartbeat")
	c.expect("v1.heartbeat")
}

// TestHeartbeat: a client that answers pings stays; one that does not is
// ended on the tick after the unanswered ping.
func TestHeartbeat(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) { o.PingInterval = 200 * time.Millisecond })
	key := e.key("read:players")
	good := e.connect(key)
	lazy := e.dial("/talo/?ticket=" + e.ticket(key))
	lazy.noPong.Store(true)
	lazy.expect(`{"res":"v1.connected","data":{}}`)
	if code, _ := lazy.expectClosed(); code != 0 {
		t.Fatalf("lazy client closed with %d, want no status", code)
	}
	good.silent()
}

// TestUnityChannelEvents: with the option, join and leave also go out
// under Unity's names, right after the reference's.
func TestUnityChannelEvents(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) { o.UnityChannelEvents = true })
	key := e.key(playerScopes...)
	p := e.identify(key, "username", "u")
	c := e.connect(key)
	online := identifySocket(t, c, p, "u")
	e.do("POST", "/v1/game-channels", key, `{"name":"c"}`, "X-Talo-Alias", fmt.Sprint(p.aliasID)).json(t, &struct{}{})
	data := `{"channel":` + channelJSON(1, "c", online, 0) + `,"playerAlias":` + online + `}`
	c.expect(`{"res":"v1.channels.player-joined","data":` + data + `}`)
	c.expect(`{"res":"v1.channels.joined","data":` + data + `}`)
	e.do("POST", "/v1/game-channels/1/leave", key, "", "X-Talo-Alias", fmt.Sprint(p.aliasID)).expect(t, 204, "")
	left := `{"channel":` + channelJSON(1, "c", online, 0) + `,"playerAlias":` + online + `,"meta":{"reason":0}}`
	c.expect(`{"res":"v1.channels.player-left","data":` + left + `}`)
	c.expect(`{"res":"v1.channels.left","data":` + left + `}`)
}

// TestAutoCleanupLeave: the last member leaving an autoCleanup channel
// gets player-left, then deleted (the reference deletes with the leaver
// still a member).
func TestAutoCleanupLeave(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	p := e.identify(key, "username", "solo")
	c := e.connect(key)
	online := identifySocket(t, c, p, "solo")
	e.do("POST", "/v1/game-channels", key, `{"name":"tmp","autoCleanup":true}`, "X-Talo-Alias", fmt.Sprint(p.aliasID)).json(t, &struct{}{})
	c.expectPrefix(`{"res":"v1.channels.player-joined"`)
	e.do("POST", "/v1/game-channels/1/leave", key, "", "X-Talo-Alias", fmt.Sprint(p.aliasID)).expect(t, 204, "")
	ch := strings.Replace(channelJSON(1, "tmp", online, 0), `"autoCleanup":false`, `"autoCleanup":true`, 1)
	c.expect(`{"res":"v1.channels.player-left","data":{"channel":` + ch + `,"playerAlias":` + online + `,"meta":{"reason":0}}}`)
	c.expect(`{"res":"v1.channels.deleted","data":{"channel":` + ch + `}}`)
	e.do("GET", "/v1/game-channels/1", key, "").expect(t, 404, `{"message":"Channel not found"}`)
	// Leaving a channel one is not in is a silent 204.
	e.do("POST", "/v1/game-channels", key, `{"name":"other"}`, "X-Talo-Alias", fmt.Sprint(p.aliasID)).json(t, &struct{}{})
	c.expectPrefix(`{"res":"v1.channels.player-joined"`)
	q := e.identify(key, "username", "q")
	e.do("POST", "/v1/game-channels/2/leave", key, "", "X-Talo-Alias", fmt.Sprint(q.aliasID)).expect(t, 204, "")
	c.silent()
}

// TestGamesAreIsolated: a socket of another game hears nothing of this
// one, cannot identify its aliases, and its keys do not reach its channels.
func TestGamesAreIsolated(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	other, err := e.srv.CreateGame(context.Background(), "Other game")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := e.srv.CreateKey(context.Background(), other, playerScopes)
	if err != nil {
		t.Fatal(err)
	}
	ann := e.identify(key, "username", "ann")
	stranger := e.identify(otherKey, "username", "ann") // same identifier, other game
	if stranger.aliasID == ann.aliasID || stranger.playerID == ann.playerID {
		t.Fatal("aliases shared across games")
	}
	o := e.connect(otherKey)
	identifySocket(t, o, stranger, "ann")
	a := e.connect(key)
	identifySocket(t, a, ann, "ann")
	o.silent() // ann's presence stayed in its game
	// ann's token, used on the other game's socket: the alias is not there.
	o.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s"}}`, ann.aliasID, ann.token))
	o.expect(errFrame("v1.players.identify", "An error occurred while processing the message", "LISTENER_ERROR",
		fmt.Sprintf("PlayerAlias not found ({ id: %d, player: { game: %d } })", ann.aliasID, other)))
	e.do("POST", "/v1/game-channels", key, `{"name":"mine"}`, "X-Talo-Alias", fmt.Sprint(ann.aliasID)).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.channels.player-joined"`)
	e.do("GET", "/v1/game-channels/1", otherKey, "").expect(t, 404, `{"message":"Channel not found"}`)
	e.do("POST", "/v1/game-channels/1/join", otherKey, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID)).expect(t, 404, `{"message":"Player not found"}`)
	o.silent()
}
