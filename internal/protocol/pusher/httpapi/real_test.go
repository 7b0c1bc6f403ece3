package httpapi

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
)

// The API over the real *pusher.Server (memory engine, no sockets): a
// trigger on a cache channel is stored in the server's own message format,
// and info=cache reads it back as {"data","ttl"}. The fake backend cannot
// prove that the two sides agree on that format; this does.
func TestRealServerCacheRoundTrip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := hub.New(memory.New(), nil)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	app := &pusher.App{ID: "1", Key: testKey, Secret: testSecret, Enabled: true, CacheTTL: 30 * time.Minute,
		Limits: config.AppLimits{MaxEventBytes: 10240, MaxChannelsPerEvent: 100, MaxBatchSize: 10, MaxEventNameLength: 200, MaxChannelNameLength: 200}}
	srv := pusher.NewServer(pusher.Options{
		Apps:   pusher.NewApps([]*pusher.App{app}),
		Hub:    h,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	th := &harness{t: t, api: New(srv, Options{Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}

	th.post("/apps/1/events", `{"name":"price","channels":["cache-btc","plain"],"data":"{\"usd\":1}"}`).expect(t, 200, "")
	res := th.get("/apps/1/channels/cache-btc", url.Values{"info": {"cache,subscription_count"}})
	res.expect(t, 200, "")
	// ttl counts down from the app's 30 minutes; allow for a slow machine.
	c, _ := res.json["cache"].(map[string]any)
	if ttl, _ := c["ttl"].(float64); c["data"] != `{"usd":1}` || ttl < 1790 || ttl > 1800 || res.json["occupied"] != false {
		t.Fatalf("channel info %s", res.raw)
	}
	th.get("/apps/1/channels/cache-empty", url.Values{"info": {"cache"}}).jsonEq(t, `{"occupied":false,"cache":null}`)
	th.get("/apps/1/channels", nil).jsonEq(t, `{"channels":{}}`)
	th.get("/apps/1/channels/presence-room/users", nil).jsonEq(t, `{"users":[]}`)
	th.post("/apps/1/users/42/terminate_connections", `{}`).jsonEq(t, `{}`)
}
