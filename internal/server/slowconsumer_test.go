package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// trigger publishes one event through the signed HTTP API.
func trigger(t *testing.T, addr, channel, name, data string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "channel": channel, "data": data})
	q := url.Values{}
	const path = "/apps/app-id/events"
	pushersign.SignRESTQuery("app-key", "app-secret", http.MethodPost, path, q, body, time.Now())
	resp, err := http.Post("http://"+addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("trigger: %d %s", resp.StatusCode, b)
	}
}

func subscribe(t *testing.T, c net.Conn, channel string) {
	t.Helper()
	if err := wsutil.WriteClientText(c, []byte(`{"event":"pusher:subscribe","data":{"channel":"`+channel+`"}}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	p, err := wsutil.ReadServerText(c)
	if err != nil || !strings.HasPrefix(string(p), `{"event":"pusher_internal:subscription_succeeded"`) {
		t.Fatalf("subscribe: %s %v", p, err)
	}
}

// A Pusher subscriber that stops reading, through the production wiring
// (server.New): once its send queue overflows it is closed with 4100, the
// slow-consumer metric counts it, and a subscriber of the same channel that
// reads receives every event, in order.
func TestSlowPusherReaderClosedWith4100(t *testing.T) {
	addr, _ := startServer(t, `
limits: {send_queue_bytes: 65536, write_timeout: 1m}
damon: {enabled: false}
pusher: {apps: [{id: app-id, key: app-key, secret: app-secret}]}
`)
	wsURL := "ws://" + addr + "/app/app-key?protocol=7"
	// The slow reader's receive buffer is small, so the server's writes
	// stop soon and its queue fills.
	small := ws.Dialer{NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		return d.DialContext(ctx, network, a)
	}}
	slow := dialPusher(t, wsURL, small)
	fast := dialPusher(t, wsURL, ws.Dialer{})
	subscribe(t, slow, "news")
	subscribe(t, fast, "news")

	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	var read atomic.Int64 // events the reading subscriber has taken
	go func() {
		// Read every event until "done"; each must be the next in order.
		n := 0
		for {
			_ = fast.SetReadDeadline(time.Now().Add(30 * time.Second))
			p, err := wsutil.ReadServerText(fast)
			if err != nil {
				got <- result{n, err}
				return
			}
			var ev struct{ Event, Data string }
			if err := json.Unmarshal(p, &ev); err != nil {
				got <- result{n, err}
				return
			}
			if ev.Event == "done" {
				got <- result{n, nil}
				return
			}
			if want := "e" + strconv.Itoa(n); ev.Event != want {
				got <- result{n, fmt.Errorf("event %q, want %q", ev.Event, want)}
				return
			}
			n++
			read.Store(int64(n))
		}
	}()

	const series = `switchboard_slow_consumer_disconnects_total{app="app-id",protocol="pusher"}`
	data := strings.Repeat("x", 9000)
	sent := 0
	// Five events (45 kB, under the 64 kB queue) at a time, each batch
	// read by the reading subscriber before the next: on a loaded machine
	// (make test runs every package at once, under -race) it must not fall
	// behind by a whole queue and be closed as well.
	for metric(t, addr, series) != "1" {
		if sent >= 2000 {
			t.Fatalf("%d events of 9 kB and the slow reader was not disconnected (disconnects: %q)", sent, metric(t, addr, series))
		}
		for range 5 {
			trigger(t, addr, "news", "e"+strconv.Itoa(sent), data)
			sent++
		}
		for deadline := time.Now().Add(30 * time.Second); read.Load() < int64(sent); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the reading subscriber took %d of %d events in 30 s", read.Load(), sent)
			}
		}
	}
	t.Logf("disconnected after %d events", sent)
	trigger(t, addr, "news", "done", "")
	if r := <-got; r.err != nil || r.n != sent {
		t.Fatalf("the reading subscriber got %d of %d events: %v", r.n, sent, r.err)
	}

	// The slow reader finds, after whatever was already on its way, a close
	// frame with 4100.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		h, err := ws.ReadHeader(slow)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(slow, payload); err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(payload)
			if code != 4100 {
				t.Fatalf("close %d %q, want 4100", code, reason)
			}
			break
		}
	}
	if v := metric(t, addr, series); v != "1" {
		t.Fatalf("%s %s", series, v)
	}
}
