package talo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

// TestSweepPresence: a player left online with no socket (its node died)
// is marked offline once stale; a connected one is not.
func TestSweepPresence(t *testing.T) {
	var clock atomic.Int64
	clock.Store(fixedNow.UnixNano())
	e := newEnv(t, func(o *talo.Options) { o.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	key := e.key(playerScopes...)
	ann, carl := e.identify(key, "username", "ann"), e.identify(key, "username", "carl")
	a := e.connect(key)
	identifySocket(t, a, ann, "ann")
	// carl went online over HTTP only, as if through a socket on a node
	// that has since died.
	e.do("PUT", "/v1/players/presence", key, `{"online":true,"customStatus":""}`, "X-Talo-Alias", fmt.Sprint(carl.aliasID)).json(t, &struct{}{})
	a.expectPrefix(`{"res":"v1.players.presence.updated"`)

	if n, err := e.srv.SweepPresence(context.Background()); err != nil || n != 0 {
		t.Fatalf("fresh presence swept: %d %v", n, err)
	}
	clock.Add(int64(31 * time.Minute))
	if n, err := e.srv.SweepPresence(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	later := time.Unix(0, clock.Load()).UTC().Format("2006-01-02T15:04:05.000Z")
	carlOff := fmt.Sprintf(`{"id":%d,"service":"username","identifier":"carl","displayName":"carl","player":{"id":"%s","props":[],"devBuild":false,`+
		`"createdAt":"%s","lastSeenAt":"%[3]s","groups":[],"presence":{"online":false,"customStatus":"","updatedAt":"%s"}},"lastSeenAt":"%[3]s","createdAt":"%[3]s","updatedAt":"%[3]s"}`,
		carl.aliasID, carl.playerID, fixedISO, later)
	a.expect(fmt.Sprintf(`{"res":"v1.players.presence.updated","data":{"presence":{"playerAlias":%s,"online":false,"customStatus":"","updatedAt":"%s"},`+
		`"meta":{"onlineChanged":true,"customStatusChanged":true}}}`, carlOff, later))
	if n, _ := e.srv.SweepPresence(context.Background()); n != 0 {
		t.Fatalf("second sweep changed %d", n)
	}
}
