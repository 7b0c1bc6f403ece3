package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// fakePusher is a minimal in-process Pusher-protocol server, just enough to
// exercise every scenario end to end under the race detector without a real
// server: handshake, public/private/presence subscribe with signature
// checks, unsubscribe, client events, member events and signed HTTP
// publishes.
type fakePusher struct {
	key, secret string
	mu          sync.Mutex
	channels    map[string]map[*fakeConn]string // conn → presence user id
	nextID      atomic.Int64
	dropEvery   int64 // when > 0, silently drop every n-th delivery
	delivered   atomic.Int64
	rejected    atomic.Int64
}

type fakeConn struct {
	id  string
	mu  sync.Mutex
	nc  net.Conn
	fp  *fakePusher
	chs map[string]bool
}

func (c *fakeConn) send(v any) {
	b, _ := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = wsutil.WriteServerText(c.nc, b)
}

func (c *fakeConn) sendRaw(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = wsutil.WriteServerText(c.nc, b)
}

type msgOut struct {
	Event   string `json:"event"`
	Channel string `json:"channel,omitempty"`
	Data    any    `json:"data,omitempty"`
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func newFakePusher() *fakePusher {
	return &fakePusher{key: "app-key", secret: "app-secret", channels: map[string]map[*fakeConn]string{}}
}

func (fp *fakePusher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/app/"):
		fp.serveWS(w, r)
	case r.URL.Path == "/apps/app-id/events" && r.Method == http.MethodPost:
		fp.serveEvents(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (fp *fakePusher) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	if q.Get("body_md5") != pushersign.BodyMD5(body) ||
		!pushersign.Equal(q.Get("auth_signature"), pushersign.RESTSignature(fp.secret, r.Method, r.URL.Path, q)) {
		fp.rejected.Add(1)
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	var ev struct {
		Name     string   `json:"name"`
		Channels []string `json:"channels"`
		Data     string   `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	for _, ch := range ev.Channels {
		fp.broadcast(ch, nil, []byte(mustJSON(msgOut{Event: ev.Name, Channel: ch, Data: ev.Data})))
	}
	_, _ = w.Write([]byte("{}")) // a client that went away has nothing to be told
}

func (fp *fakePusher) broadcast(ch string, except *fakeConn, b []byte) {
	fp.mu.Lock()
	var to []*fakeConn
	for c := range fp.channels[ch] {
		if c != except {
			to = append(to, c)
		}
	}
	fp.mu.Unlock()
	for _, c := range to {
		if n := fp.delivered.Add(1); fp.dropEvery > 0 && n%fp.dropEvery == 0 {
			continue
		}
		c.sendRaw(b)
	}
}

func (fp *fakePusher) serveWS(w http.ResponseWriter, r *http.Request) {
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	c := &fakeConn{id: fmt.Sprintf("%d.%d", fp.nextID.Add(1), 7), nc: nc, fp: fp, chs: map[string]bool{}}
	defer fp.drop(c)
	defer func() { _ = nc.Close() }() // the read loop below has already ended the connection
	c.send(msgOut{Event: "pusher:connection_established", Data: mustJSON(map[string]any{"socket_id": c.id, "activity_timeout": 120})})
	for {
		b, err := wsutil.ReadClientText(nc)
		if err != nil {
			return
		}
		var in struct {
			Event   string          `json:"event"`
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(b, &in) != nil {
			continue
		}
		switch {
		case in.Event == "pusher:ping":
			c.send(msgOut{Event: "pusher:pong", Data: "{}"})
		case in.Event == "pusher:subscribe":
			var d struct{ Channel, Auth, Channel_data string }
			_ = json.Unmarshal(in.Data, &d)
			fp.subscribe(c, d.Channel, d.Auth, d.Channel_data)
		case in.Event == "pusher:unsubscribe":
			var d struct{ Channel string }
			_ = json.Unmarshal(in.Data, &d)
			fp.unsubscribe(c, d.Channel)
		case strings.HasPrefix(in.Event, "client-"):
			fp.broadcast(in.Channel, c, b)
		}
	}
}

func (fp *fakePusher) subscribe(c *fakeConn, ch, auth, data string) {
	if strings.HasPrefix(ch, "private-") || strings.HasPrefix(ch, "presence-") {
		if auth != pushersign.ChannelAuth(fp.key, fp.secret, c.id, ch, data) {
			c.send(msgOut{Event: "pusher:error", Channel: ch, Data: map[string]any{"code": nil, "message": "Invalid signature"}})
			return
		}
	}
	user := ""
	var info json.RawMessage
	if strings.HasPrefix(ch, "presence-") {
		var cd struct {
			UserID   string          `json:"user_id"`
			UserInfo json.RawMessage `json:"user_info"`
		}
		_ = json.Unmarshal([]byte(data), &cd)
		user, info = cd.UserID, cd.UserInfo
	}
	fp.mu.Lock()
	if fp.channels[ch] == nil {
		fp.channels[ch] = map[*fakeConn]string{}
	}
	fp.channels[ch][c] = user
	c.chs[ch] = true
	fp.mu.Unlock()
	c.send(msgOut{Event: "pusher_internal:subscription_succeeded", Channel: ch, Data: "{}"})
	if user != "" {
		fp.broadcast(ch, c, []byte(mustJSON(msgOut{Event: "pusher_internal:member_added", Channel: ch,
			Data: mustJSON(map[string]any{"user_id": user, "user_info": info})})))
	}
}

func (fp *fakePusher) unsubscribe(c *fakeConn, ch string) {
	fp.mu.Lock()
	user, ok := fp.channels[ch][c]
	delete(fp.channels[ch], c)
	delete(c.chs, ch)
	fp.mu.Unlock()
	if ok && user != "" {
		fp.broadcast(ch, c, []byte(mustJSON(msgOut{Event: "pusher_internal:member_removed", Channel: ch,
			Data: mustJSON(map[string]any{"user_id": user})})))
	}
}

func (fp *fakePusher) drop(c *fakeConn) {
	fp.mu.Lock()
	chs := make([]string, 0, len(c.chs))
	for ch := range c.chs {
		chs = append(chs, ch)
	}
	fp.mu.Unlock()
	for _, ch := range chs {
		fp.unsubscribe(c, ch)
	}
}

func startFake(t *testing.T) (*fakePusher, Common) {
	t.Helper()
	fp := newFakePusher()
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	c := DefaultCommon()
	c.Target = testTarget(t, srv)
	c.Conns = 20
	c.ConnectConcurrency = 8
	c.ConnectTimeout = 5 * time.Second
	c.Settle = 50 * time.Millisecond
	c.Drain = 2 * time.Second
	c.MaxRunTime = 30 * time.Second
	c.SourceAddrs = DefaultSourceAddrs(c.Target, 2)
	c.ServerPID = 0
	c.BackgroundSample = 0
	return fp, c
}

func TestFanoutAgainstFakeServer(t *testing.T) {
	_, c := startFake(t)
	rep, err := RunFanout(context.Background(), FanoutConfig{Common: c, Channels: 3, Rates: []float64{50, 100},
		StepDuration: 300 * time.Millisecond, PublishWorkers: 4, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns.Held != 20 || len(rep.Steps) != 2 || rep.Best == nil || rep.Best.Rate != 100 {
		t.Fatalf("report: %+v", rep)
	}
	for _, s := range rep.Steps {
		// 20 subscribers over 3 channels: 7,7,6 → publishes rotate over them.
		if s.Sent == 0 || s.Missing != 0 || s.Received != s.Expected || s.SendErrors != 0 || !s.Pass {
			t.Fatalf("step %+v", s)
		}
		if s.Latency.Count != s.Received || s.Latency.P50Ms <= 0 {
			t.Fatalf("latency %+v", s.Latency)
		}
	}
}

func TestFanoutCountsMissingDeliveries(t *testing.T) {
	fp, c := startFake(t)
	fp.dropEvery = 10
	c.Drain = 300 * time.Millisecond
	rep, err := RunFanout(context.Background(), FanoutConfig{Common: c, Channels: 1, Rates: []float64{50, 100},
		StepDuration: 200 * time.Millisecond, PublishWorkers: 2, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 1 || rep.Best != nil {
		t.Fatalf("ramp did not stop at the lossy step: %+v", rep.Steps)
	}
	s := rep.Steps[0]
	if s.Missing == 0 || s.Missing != s.Expected-s.Received || s.Pass {
		t.Fatalf("missing not counted: %+v", s)
	}
}

func TestFanoutWrongSecretIsSendErrors(t *testing.T) {
	fp, c := startFake(t)
	c.Target.Secret = "wrong"
	rep, err := RunFanout(context.Background(), FanoutConfig{Common: c, Channels: 1, Rates: []float64{20},
		StepDuration: 200 * time.Millisecond, PublishWorkers: 2, Limits: StepLimits{MaxP99: time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Steps[0]; s.SendErrors != s.Sent || s.Pass || fp.rejected.Load() == 0 {
		t.Fatalf("step %+v", s)
	}
}

func TestClientEventsAgainstFakeServer(t *testing.T) {
	_, c := startFake(t)
	rep, err := RunClientEvents(context.Background(), ClientEventsConfig{Common: c, Channels: 4, Rate: 100,
		Duration: 300 * time.Millisecond, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Steps[0]
	// 5 per channel → each event reaches the 4 others, never the sender.
	if s.Sent != 30 || s.Expected != 30*4 || s.Received != s.Expected || !s.Pass {
		t.Fatalf("step %+v", s)
	}
}

func TestPresenceAgainstFakeServer(t *testing.T) {
	_, c := startFake(t)
	rep, err := RunPresence(context.Background(), PresenceConfig{Common: c, Channels: 2, Rate: 20,
		Duration: 300 * time.Millisecond, Hold: 100 * time.Millisecond, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Steps[0]
	if s.Sent != 6 || s.SendErrors != 0 || s.Expected != 6*10*2 || s.Received != s.Expected || !s.Pass {
		t.Fatalf("step %+v", s)
	}
	if s.RemoveLatency == nil || s.RemoveLatency.Count != 60 || s.Latency.Count != 60 {
		t.Fatalf("latencies add %+v remove %+v", s.Latency, s.RemoveLatency)
	}
}

func TestChurnAndIdleAgainstFakeServer(t *testing.T) {
	_, c := startFake(t)
	rep, err := RunChurn(context.Background(), ChurnConfig{Common: c, Rate: 100, Duration: 300 * time.Millisecond,
		Hold: 10 * time.Millisecond, MaxInFlight: 5, Channels: 3}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if ch := rep.Churn; ch.Started != 30 || ch.Completed != 30 || ch.Failed != 0 || ch.MaxInFlight > 5 || ch.CycleLatency.Count != 30 {
		t.Fatalf("churn %+v", ch)
	}
	c.ServerPID = 0
	rep, err = RunIdle(context.Background(), IdleConfig{Common: c, Channels: 2, Hold: 50 * time.Millisecond}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Idle.Held != 20 || rep.Idle.Lost != 0 || rep.Conns.ConnectErrors != 0 {
		t.Fatalf("idle %+v conns %+v", rep.Idle, rep.Conns)
	}
}

func TestConnectErrorsAreCounted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if err := ln.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	c := DefaultCommon()
	c.Target.Port = addr.Port
	c.Conns = 5
	c.Settle = 0
	c.BackgroundSample = 0
	c.SourceAddrs = DefaultSourceAddrs(c.Target, 2)
	rep, err := RunIdle(context.Background(), IdleConfig{Common: c, Hold: 0}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns.ConnectErrors != 5 || rep.Idle.Held != 0 || len(rep.Conns.Errors) == 0 {
		t.Fatalf("conns %+v", rep.Conns)
	}
}
