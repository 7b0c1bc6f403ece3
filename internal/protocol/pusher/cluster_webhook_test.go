package pusher

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/webhook"
)

// TestClusterOccupyPairsWithALateVacateMarker: another node decided a
// member's removal and writes its marker a store round trip later; the
// member's re-add decided here in between must pair with it on the second
// look (neither is sent), not go out first and leave the held removal to
// follow it (member_added, member_added, member_removed for a member who
// is present).
func TestClusterOccupyPairsWithALateVacateMarker(t *testing.T) {
	bodies := make(chan string, 8)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	defer rcv.Close()

	d := webhook.New(webhook.Options{BatchWindow: -1, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)

	kv := memory.New()
	s := &Server{opts: Options{Webhooks: d, ClusterWebhooks: kv}, log: slog.New(slog.DiscardHandler)}
	app := &App{ID: "app", webhook: &webhook.Target{AppID: "app", Key: "key", Secret: "secret",
		Hooks: []config.Webhook{{URL: rcv.URL, EventTypes: []string{"member_added"}}}}}

	s.emitWebhook(app, webhook.Event{Name: "member_added", Channel: "presence-room", UserID: "late"})
	// The vacating node's marker, written after this node looked once.
	key := heldKey("member_removed", "presence-room", "late")
	if err := kv.KVSet(ctx, "app", key, []byte("1"), heldMarkerTTL); err != nil {
		t.Fatal(err)
	}
	// A re-add with no vacate anywhere goes out (after its second look):
	// it is the marker that the first one must not have arrived before.
	s.emitWebhook(app, webhook.Event{Name: "member_added", Channel: "presence-room", UserID: "alone"})

	select {
	case b := <-bodies:
		if !strings.Contains(b, `"user_id":"alone"`) || strings.Contains(b, `"user_id":"late"`) {
			t.Fatalf("first webhook = %s, want only the member_added of alone", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook for the unpaired member_added")
	}
	if _, taken, err := kv.KVTake(ctx, "app", key); err != nil || taken {
		t.Fatalf("the vacate's marker is still there (taken=%v, err=%v): its held member_removed would go out", taken, err)
	}
	s.secondLooks.Wait()
	select {
	case b := <-bodies:
		t.Fatalf("unexpected webhook %s", b)
	default:
	}
}
