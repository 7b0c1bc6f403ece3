package pusher

import (
	"context"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/config"
	redisengine "github.com/switchboard-rt/switchboard/internal/engine/redis"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/redistest"
)

// TestTheQuotaRefusesWith4100WhenTheStoreIsDown: an app with a connection
// quota on a cluster whose store cannot be asked refuses new connections
// with pusher:error 4100 and close 4100 (pusher-js retries after a back
// off), rather than admitting them past a quota nobody could check.
func TestTheQuotaRefusesWith4100WhenTheStoreIsDown(t *testing.T) {
	rs := redistest.Start(t)
	cfg, err := config.Parse([]byte(`pusher: {apps: [{id: app-id, key: app-key, secret: app-secret, limits: {max_connections: 2}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	eng := redisengine.New(redisengine.Options{URL: rs.URL(), NodeName: "quota", Prefix: "tquota:"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = eng.Close()
	})
	h := hub.New(eng, m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, ctx, h, m, cfg, nil)
	e.connect() // admitted while the store answers

	rs.Kill()
	nc, err := e.dialRaw("/app/app-key?protocol=7")
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, nc: nc}
	c.expectRefusal(4100)
}
