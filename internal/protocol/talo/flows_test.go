package talo_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/pgtest"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

// playerScopes are what the Godot and Unity demos' keys hold for sockets,
// channels and presence.
var playerScopes = []string{"read:players", "write:players", "read:playerPresence", "write:playerPresence",
	"read:gameChannels", "write:gameChannels"}

// aliasJSON is the exact PlayerAlias JSON (spec section 6) of a
// "username" alias under the fixed clock; presence is the nested
// presence or "null".
func aliasJSON(p player, identifier, presence string) string {
	return fmt.Sprintf(`{"id":%d,"service":"username","identifier":"%s","displayName":"%s","player":{"id":"%s","props":[],"devBuild":false,`+
		`"createdAt":"%[5]s","lastSeenAt":"%[5]s","groups":[],"presence":%[6]s},"lastSeenAt":"%[5]s","createdAt":"%[5]s","updatedAt":"%[5]s"}`,
		p.aliasID, identifier, identifier, p.playerID, fixedISO, presence)
}

func presenceLite(online bool, status string) string {
	return fmt.Sprintf(`{"online":%t,"customStatus":"%s","updatedAt":"%s"}`, online, status, fixedISO)
}

func presenceUpdated(alias string, online bool, status string, onlineChanged, statusChanged bool) string {
	return fmt.Sprintf(`{"res":"v1.players.presence.updated","data":{"presence":{"playerAlias":%s,"online":%t,"customStatus":"%s","updatedAt":"%s"},`+
		`"meta":{"onlineChanged":%t,"customStatusChanged":%t}}}`, alias, online, status, fixedISO, onlineChanged, statusChanged)
}

// channelJSON is a channel as socket messages carry it (no memberCount).
func channelJSON(id int64, name string, owner string, messages int) string {
	return fmt.Sprintf(`{"id":%d,"name":"%s","owner":%s,"totalMessages":%d,"props":[],"autoCleanup":false,"private":false,`+
		`"temporaryMembership":false,"createdAt":"%[5]s","updatedAt":"%[5]s"}`, id, name, owner, messages, fixedISO)
}

func withCount(channel string, n int) string {
	return strings.TrimSuffix(channel, "}") + fmt.Sprintf(`,"memberCount":%d}`, n)
}

// identifySocket sends the socket identify the way Godot does (no
// sessionToken key when there is no session) and checks both answers.
func identifySocket(t *testing.T, c *client, p player, identifier string) string {
	t.Helper()
	c.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s"}}`, p.aliasID, p.token))
	online := aliasJSON(p, identifier, presenceLite(true, ""))
	c.expect(presenceUpdated(online, true, "", true, true))
	c.expect(`{"res":"v1.players.identify.success","data":` + online + `}`)
	return online
}

// TestGodotFlow replays the Godot plugin: health check, HTTP identify,
// ticket, connect, socket identify, create/join a channel, message,
// leave, presence, disconnect.
func TestGodotFlow(t *testing.T) { godotFlow(t, newEnv(t, nil)) }

// TestGodotFlowPostgres runs the same flow on a PostgreSQL store.
func TestGodotFlowPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	godotFlow(t, newEnv(t, func(o *talo.Options) { o.PostgresDSN = dsn }))
}

func godotFlow(t *testing.T, e *env) {
	key := e.key(playerScopes...)
	e.do("GET", "/public/health", "", "").expect(t, 204, "")
	e.do("GET", "/v1/health-check", key, "").expect(t, 204, "")

	ann := e.identify(key, "username", "ann")
	if got, want := string(ann.alias), aliasJSON(ann, "ann", "null"); got != want {
		t.Fatalf("HTTP identify alias\n got %s\nwant %s", got, want)
	}
	a := e.connect(key)
	annOnline := identifySocket(t, a, ann, "ann")

	bob := e.identify(key, "username", "bob")
	b := e.connect(key)
	bobOnline := identifySocket(t, b, bob, "bob")
	a.expect(presenceUpdated(bobOnline, true, "", true, true)) // same game, read:playerPresence

	// Create: the creator gets player-joined; the answer has memberCount.
	r := e.do("POST", "/v1/game-channels", key, `{"name":"general","props":[],"autoCleanup":false,"private":false,"temporaryMembership":false}`,
		"X-Talo-Alias", fmt.Sprint(ann.aliasID), "X-Talo-Player", ann.playerID)
	ch := channelJSON(1, "general", annOnline, 0)
	r.expect(t, 200, `{"channel":`+withCount(ch, 1)+`}`)
	a.expect(`{"res":"v1.channels.player-joined","data":{"channel":` + ch + `,"playerAlias":` + annOnline + `}}`)
	b.silent()

	// Join: every member, the joiner included.
	e.do("POST", "/v1/game-channels/1/join", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).expect(t, 200, `{"channel":`+withCount(ch, 2)+`}`)
	joined := `{"res":"v1.channels.player-joined","data":{"channel":` + ch + `,"playerAlias":` + bobOnline + `}}`
	a.expect(joined)
	b.expect(joined)
	// Joining again is idempotent and silent.
	e.do("POST", "/v1/game-channels/1/join", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).expect(t, 200, `{"channel":`+withCount(ch, 2)+`}`)
	a.silent()

	// Message: every member, the sender included.
	a.send(`{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"hi <all> & \"you\""}}`)
	msg := `{"res":"v1.channels.message","data":{"channel":` + ch + `,"message":"hi <all> & \"you\"","playerAlias":` + annOnline + `}}`
	a.expect(msg)
	b.expect(msg)

	// The members route sees both; totalMessages counted the message.
	r = e.do("GET", "/v1/game-channels/1/members", key, "", "X-Talo-Alias", fmt.Sprint(ann.aliasID))
	r.expect(t, 200, `{"members":[`+annOnline+`,`+bobOnline+`],"count":2,"itemsPerPage":50,"isLastPage":true}`)
	ch1 := channelJSON(1, "general", annOnline, 1)
	e.do("GET", "/v1/game-channels?page=0", key, "").expect(t, 200, `{"channels":[`+withCount(ch1, 2)+`],"count":1,"itemsPerPage":50,"isLastPage":true}`)
	e.do("GET", "/v1/game-channels/subscriptions", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).expect(t, 200, `{"channels":[`+withCount(ch1, 2)+`]}`)

	// Leave: player-left (reason 0) to every member, the leaver included.
	e.do("POST", "/v1/game-channels/1/leave", key, "", "X-Talo-Alias", fmt.Sprint(bob.aliasID)).expect(t, 204, "")
	left := `{"res":"v1.channels.player-left","data":{"channel":` + ch1 + `,"playerAlias":` + bobOnline + `,"meta":{"reason":0}}}`
	a.expect(left)
	b.expect(left)
	b.send(`{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"still here?"}}`)
	b.expect(`{"res":"v1.error","data":{"req":"v1.channels.message","message":"An error occurred while processing the message","errorCode":"LISTENER_ERROR","cause":"Player not in channel"}}`)

	// Presence PUT after identify: meta {false, true} (the reference's test).
	r = e.do("PUT", "/v1/players/presence", key, `{"online":true,"customStatus":"Testing"}`, "X-Talo-Alias", fmt.Sprint(ann.aliasID))
	annTesting := aliasJSON(ann, "ann", presenceLite(true, "Testing"))
	r.expect(t, 200, `{"presence":{"playerAlias":`+annTesting+`,"online":true,"customStatus":"Testing","updatedAt":"`+fixedISO+`"}}`)
	upd := presenceUpdated(annTesting, true, "Testing", false, true)
	a.expect(upd)
	b.expect(upd)
	e.do("GET", "/v1/players/presence/"+ann.playerID, key, "").
		expect(t, 200, `{"presence":{"playerAlias":`+annTesting+`,"online":true,"customStatus":"Testing","updatedAt":"`+fixedISO+`"}}`)

	// Disconnect: the player goes offline, the others hear it.
	if err := b.conn.Close(); err != nil {
		t.Fatal(err)
	}
	bobOffline := aliasJSON(bob, "bob", presenceLite(false, ""))
	a.expect(presenceUpdated(bobOffline, false, "", true, true))
}

// TestUnityFlow replays the Unity package: sessionToken "" in identify,
// the text heartbeat echoed as text, and a reconnect that re-identifies
// with a token from POST /v1/players/socket-token.
func TestUnityFlow(t *testing.T) {
	e := newEnv(t, nil)
	key := e.key(playerScopes...)
	p := e.identify(key, "username", "unity")
	c := e.connect(key)
	c.send("v1.heartbeat")
	c.expect("v1.heartbeat")
	c.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s","sessionToken":""}}`, p.aliasID, p.token))
	online := aliasJSON(p, "unity", presenceLite(true, ""))
	c.expect(presenceUpdated(online, true, "", true, true))
	c.expect(`{"res":"v1.players.identify.success","data":` + online + `}`)

	// Connection restored: the old socket goes, a new token and ticket.
	if err := c.conn.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitConnections(0) // its close has been handled (player offline)
	r := e.do("POST", "/v1/players/socket-token", key, "", "X-Talo-Alias", fmt.Sprint(p.aliasID))
	var v struct{ SocketToken string }
	r.json(t, &v)
	if r.code != 200 || v.SocketToken == "" || v.SocketToken == p.token {
		t.Fatalf("socket-token: %d %s", r.code, r.body)
	}
	c2 := e.connect(key)
	// The previous token was replaced.
	c2.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s","sessionToken":""}}`, p.aliasID, p.token))
	c2.expect(`{"res":"v1.error","data":{"req":"v1.players.identify","message":"Invalid socket token","errorCode":"INVALID_SOCKET_TOKEN"}}`)
	p.token = v.SocketToken
	c2.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s","sessionToken":""}}`, p.aliasID, p.token))
	// The close of the first socket marked the player offline; this one
	// brings it back (the first socket's offline update reached nobody).
	c2.expect(presenceUpdated(online, true, "", true, true))
	c2.expect(`{"res":"v1.players.identify.success","data":` + online + `}`)
	// A socket token is reusable within its hour.
	c2.send(fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s","sessionToken":""}}`, p.aliasID, p.token))
	c2.expect(presenceUpdated(online, true, "", false, true))
	c2.expect(`{"res":"v1.players.identify.success","data":` + online + `}`)
}
