package httpapi

// The HTTP API publish path's own cost, for issue 11 (docs/performance.md,
// "Pusher protocol path"):
//
//	go test -run '^$' -bench 'APIPublish' -benchmem -count 6 ./internal/protocol/pusher/httpapi/
//
// A signed POST goes through API.ServeHTTP (routing, body read, signature
// and body_md5 checks, parse, validation) into the real pusher.Server and
// hub (memory engine), which fan it out to 10 subscribers per channel. The
// subscribers are counters at the hub's Subscriber seam: the transport's
// cost per socket is measured by its own benchmarks, not here.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

type countingSub struct{ n *atomic.Int64 }

func (s countingSub) Deliver(*transport.Message) { s.n.Add(1) }
func (s countingSub) Terminate()                 {}

// rewindBody is a request body the benchmark can replay without allocating.
type rewindBody struct {
	bytes.Reader
	b []byte
}

func (r *rewindBody) Close() error { return nil }
func (r *rewindBody) rewind()      { r.Reset(r.b) }

// benchWriter is a ResponseWriter that keeps nothing but the status.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(s int)           { w.status = s }

func BenchmarkAPIPublish(b *testing.B) {
	data := `{"text":"` + strings.Repeat("d", 80) + `"}`
	channels := make([]string, 10)
	for i := range channels {
		channels[i] = "bench-" + strconv.Itoa(i)
	}
	var ev10 strings.Builder
	ev10.WriteString(`{"name":"bench","channels":[`)
	for i, ch := range channels {
		if i > 0 {
			ev10.WriteByte(',')
		}
		ev10.WriteString(strconv.Quote(ch))
	}
	ev10.WriteString(`],"data":` + strconv.Quote(data) + `}`)
	var batch strings.Builder
	batch.WriteString(`{"batch":[`)
	for i, ch := range channels {
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(`{"name":"bench","channel":` + strconv.Quote(ch) + `,"data":` + strconv.Quote(data) + `}`)
	}
	batch.WriteString(`]}`)
	cases := []struct {
		name, path, body string
		deliveries       int64
	}{
		{"events/1-channel", "/apps/1/events", `{"name":"bench","channels":["bench-0"],"data":` + strconv.Quote(data) + `}`, 10},
		{"events/10-channels", "/apps/1/events", ev10.String(), 100},
		{"batch_events/10", "/apps/1/batch_events", batch.String(), 100},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			api, delivered := benchAPI(b, channels)
			body := &rewindBody{b: []byte(c.body)}
			r := signed(http.MethodPost, c.path, nil, body.b, testKey, testSecret, testNow)
			r.Body = body
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				body.rewind()
				clear(w.h)
				api.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
			b.StopTimer()
			if got := delivered.Load(); got != int64(b.N)*c.deliveries {
				b.Fatalf("%d deliveries, want %d", got, int64(b.N)*c.deliveries)
			}
		})
	}
}

// benchAPI is the API over a real server whose channels have 10
// subscribers each.
func benchAPI(b *testing.B, channels []string) (*API, *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	h := hub.New(memory.New(), nil)
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	app := &pusher.App{ID: "1", Key: testKey, Secret: testSecret, Enabled: true,
		Limits: config.AppLimits{}.WithDefaults(false)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := pusher.NewServer(pusher.Options{Apps: pusher.NewApps([]*pusher.App{app}), Hub: h, Logger: log})
	var delivered atomic.Int64
	for _, ch := range channels {
		for range 10 {
			if _, err := h.Subscribe(ctx, "1", ch, &countingSub{&delivered}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return New(srv, Options{Now: func() time.Time { return testNow }, Logger: log}), &delivered
}
