package pusher

import (
	"context"
	"encoding/json"
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
	f := c.read()
	var d struct {
		Code int `json:"code"`
	}
	if f.Event != "pusher:error" || json.Unmarshal(f.Data, &d) != nil || d.Code != 4100 {
		t.Fatalf("first frame %s, want pusher:error 4100", f.raw)
	}
	c.expectClose(4100)
}
