package pusher

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"gopkg.in/yaml.v3"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

type testEnv struct {
	t    testing.TB
	srv  *Server
	http *httptest.Server
	app  *App
}

// newEnv runs a Pusher server over real loopback sockets. mutate adjusts
// the default app's configuration before the server starts.
func newEnv(t testing.TB, mutate func(*config.Config)) *testEnv {
	t.Helper()
	return newEnvClock(t, mutate, nil)
}

// newEnvClock is newEnv with the client-event rate limiter on the clock now
// (nil: time.Now).
func newEnvClock(t testing.TB, mutate func(*config.Config), now func() time.Time) *testEnv {
	t.Helper()
	cfg, err := config.Parse([]byte(`pusher: {activity_timeout: 120s, apps: [{id: app-id, key: app-key, secret: app-secret}, {id: off, key: off-key, secret: s, enabled: false}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
		cfg, err = config.Parse(mustYAML(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
	}
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, ctx, h, m, cfg, now)
}

// newEnvOn serves cfg's Pusher apps on a started hub h (whose observer is
// m) until ctx ends.
func newEnvOn(t testing.TB, ctx context.Context, h *hub.Hub, m *metrics.Metrics, cfg *config.Config, now func() time.Time) *testEnv {
	t.Helper()
	var apps []*App
	for _, a := range cfg.Pusher.Apps {
		apps = append(apps, NewApp(a, m))
	}
	wheel := timewheel.New(10*time.Millisecond, 256)
	go wheel.Run(ctx)
	s := NewServer(Options{
		Apps: NewApps(apps), Hub: h, Wheel: wheel,
		Upgrader:        &transport.Upgrader{Poller: testPoller(t), ParkAfter: time.Millisecond, Options: transport.Options{MaxMessageBytes: cfg.Limits.MaxMessageBytes, SendQueueBytes: cfg.Limits.SendQueueBytes, SlowConsumerCode: 4100}},
		ActivityTimeout: cfg.Pusher.ActivityTimeout.D(),
		PongTimeout:     cfg.Pusher.PongTimeout.D(),
		Now:             now,
	})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/app/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.ServeWS(w, r, key)
	}))
	t.Cleanup(hs.Close)
	return &testEnv{t: t, srv: s, http: hs, app: s.Apps().ByKey("app-key")}
}

// testPoller parks idle connections as the server does; it closes after
// the test's HTTP server (cleanups run last-in first-out).
func testPoller(t testing.TB) *transport.Poller {
	t.Helper()
	p, err := transport.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustYAML(t testing.TB, c *config.Config) []byte {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// client is a minimal Pusher client over a real WebSocket.
type client struct {
	t        testing.TB
	nc       net.Conn
	socketID string
}

type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
	raw     string
}

// dataString decodes data that the server sends double-encoded.
func (f frame) dataString() string {
	var s string
	if err := json.Unmarshal(f.Data, &s); err != nil {
		return "NOT-A-STRING:" + string(f.Data)
	}
	return s
}

func (e *testEnv) dialRaw(path string) (net.Conn, error) {
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + path
	nc, br, _, err := ws.Dial(context.Background(), url)
	if err != nil || br == nil {
		return nc, err
	}
	// The server's first frame may have arrived with the handshake.
	return &bufferedConn{Conn: nc, r: io.MultiReader(br, nc)}, nil
}

type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connect opens a connection to the default app and reads connection_established.
func (e *testEnv) connect() *client {
	e.t.Helper()
	nc, err := e.dialRaw("/app/app-key?protocol=7&client=js&version=8.6.0&flash=false")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = nc.Close() })
	c := &client{t: e.t, nc: nc}
	f := c.read()
	if f.Event != "pusher:connection_established" {
		e.t.Fatalf("first frame %s", f.raw)
	}
	var est struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(f.dataString()), &est); err != nil {
		e.t.Fatalf("connection_established data %s: %v", f.raw, err)
	}
	c.socketID = est.SocketID
	return c
}

func (c *client) send(v string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(v)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() frame {
	c.t.Helper()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(c.nc)
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		p := make([]byte, h.Length)
		if _, err := readFull(c.nc, p); err != nil {
			c.t.Fatalf("read: %v", err)
		}
		switch h.OpCode {
		case ws.OpPing:
			continue
		case ws.OpClose:
			code := 0
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			return frame{Event: "CLOSE", Data: json.RawMessage(itoa(code)), raw: string(p[min(2, len(p)):])}
		}
		var f frame
		if err := json.Unmarshal(p, &f); err != nil {
			c.t.Fatalf("server sent non-JSON %q", p)
		}
		f.raw = string(p)
		return f
	}
}

// expect reads frames until one with the event arrives (failing on a close).
func (c *client) expect(event string) frame {
	c.t.Helper()
	for {
		f := c.read()
		if f.Event == event {
			return f
		}
		if f.Event == "CLOSE" {
			c.t.Fatalf("closed with %s while waiting for %s", f.Data, event)
		}
	}
}

// expectClose reads until the close frame and checks its code.
// expectRefusal reads the first frame, pusher:error with code and a
// message, then the close frame with code: how a refused connection ends.
func (c *client) expectRefusal(code int) {
	c.t.Helper()
	f := c.read()
	var d struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if f.Event != "pusher:error" || json.Unmarshal(f.Data, &d) != nil || d.Code != code || d.Message == "" {
		c.t.Fatalf("first frame %s, want pusher:error %d with a message", f.raw, code)
	}
	c.expectClose(code)
}

func (c *client) expectClose(code int) {
	c.t.Helper()
	for {
		f := c.read()
		if f.Event == "CLOSE" {
			if string(f.Data) != itoa(code) {
				c.t.Fatalf("close code %s, want %d", f.Data, code)
			}
			return
		}
	}
}

// expectNothing asserts that no frame arrives within d and that the
// connection is still there: a closed or reset socket is not silence.
// Prefer nothingBeforePong where the server's ordering makes it exact.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	h, err := ws.ReadHeader(c.nc)
	if err == nil {
		p := make([]byte, h.Length)
		_, _ = readFull(c.nc, p)
		if h.OpCode == ws.OpClose {
			c.t.Fatalf("the server closed the connection (%q) where nothing should arrive", p)
		}
		c.t.Fatalf("unexpected frame %q", p)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("the connection ended where nothing should arrive: %v", err)
	}
}

// nothingBeforePong sends pusher:ping and asserts that the very next frame
// is pusher:pong: the positive marker for "nothing arrives". The server
// handles one connection's messages in order and a publish is queued on
// every subscriber's connection before Trigger returns (memory engine), so
// anything that would have reached this client before the ping was
// handled arrives before the pong; and the pong proves the socket is alive.
func (c *client) nothingBeforePong() {
	c.t.Helper()
	c.send(`{"event":"pusher:ping","data":{}}`)
	if f := c.read(); f.raw != `{"event":"pusher:pong","data":"{}"}` {
		c.t.Fatalf("got %s before the pong, want nothing", f.raw)
	}
}

// fakeClock is a clock a test moves by hand (the client-event rate limiter's).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func readFull(nc net.Conn, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := nc.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func (c *client) subscribe(channel, auth, channelData string) {
	c.t.Helper()
	d, _ := json.Marshal(map[string]string{"channel": channel, "auth": auth, "channel_data": channelData})
	c.send(`{"event":"pusher:subscribe","data":` + string(d) + `}`)
}

// join subscribes with a valid signature and waits for success.
func (c *client) join(channel, channelData string) frame {
	c.t.Helper()
	auth := ""
	if ClassifyChannel(channel).NeedsAuth() {
		auth = pushersign.ChannelAuth("app-key", "app-secret", c.socketID, channel, channelData)
	}
	c.subscribe(channel, auth, channelData)
	return c.expect("pusher_internal:subscription_succeeded")
}
