package talo_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/wstest"
)

// fixedNow is the server's clock in tests, so every timestamp in a frame
// is known and frames can be compared byte for byte.
var fixedNow = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

const fixedISO = "2026-01-02T03:04:05.678Z"

type env struct {
	t       *testing.T
	srv     *talo.Server
	http    *httptest.Server
	wsURL   string
	game    int64
	client  *http.Client
	metrics *metrics.Metrics
}

// newEnv starts a Talo server on a real loopback listener with a SQLite
// store in a temporary directory; mutate adjusts the options.
func newEnv(t *testing.T, mutate func(*talo.Options)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := metrics.New()
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	opts := talo.Options{Hub: h, Metrics: m, Logger: testLogger(), StorePath: filepath.Join(t.TempDir(), "talo.db"),
		DisableRateLimits: true, Now: func() time.Time { return fixedNow }}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := talo.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := s.Mount(mux); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	game, err := s.CreateGame(ctx, "Test game")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: s, http: hs, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http"), game: game, client: hs.Client(), metrics: m}
}

func testLogger() *slog.Logger {
	if os.Getenv("TALO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// key mints an access key for the test game.
func (e *env) key(scopes ...string) string {
	e.t.Helper()
	k, err := e.srv.CreateKey(context.Background(), e.game, scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

type response struct {
	code   int
	body   string
	header http.Header
}

// do sends a request with the headers both clients send.
func (e *env) do(method, path, key string, body string, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Talo-Dev-Build", "0")
	req.Header.Set("X-Talo-Include-Dev-Data", "0")
	req.Header.Set("X-Talo-Client", "godot:0.49.1")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, string(b), res.Header}
}

// expect asserts a status and an exact body ("" for none).
func (r response) expect(t *testing.T, code int, body string) {
	t.Helper()
	if r.code != code || r.body != body {
		t.Fatalf("got %d %s\nwant %d %s", r.code, r.body, code, body)
	}
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("%d %s: %v", r.code, r.body, err)
	}
}

// ticket asks for a socket ticket.
func (e *env) ticket(key string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/socket-tickets", key, "")
	var v struct{ Ticket string }
	r.json(e.t, &v)
	if r.code != 200 || v.Ticket == "" {
		e.t.Fatalf("ticket: %d %s", r.code, r.body)
	}
	return v.Ticket
}

type player struct {
	aliasID  int64
	playerID string
	token    string
	alias    json.RawMessage // as GET /v1/players/identify returned it
}

// identify runs the HTTP identify.
func (e *env) identify(key, service, identifier string) player {
	e.t.Helper()
	r := e.do("GET", "/v1/players/identify?service="+service+"&identifier="+identifier, key, "")
	var v struct {
		Alias       json.RawMessage
		SocketToken string
	}
	r.json(e.t, &v)
	var a struct {
		ID     int64
		Player struct{ ID string }
	}
	if err := json.Unmarshal(v.Alias, &a); err != nil || r.code != 200 {
		e.t.Fatalf("identify: %d %s", r.code, r.body)
	}
	return player{aliasID: a.ID, playerID: a.Player.ID, token: v.SocketToken, alias: v.Alias}
}

// frame is one frame the client received.
type frame struct {
	op      ws.OpCode
	payload []byte
}

// client is a WebSocket client on gobwas/ws that records every frame and
// answers pings unless told not to.
type client struct {
	t       *testing.T
	conn    net.Conn
	wmu     sync.Mutex
	frames  chan frame
	done    chan struct{}
	closeMu sync.Mutex
	closeAt *frame
	noPong  atomic.Bool
}

func (e *env) dial(path string) *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{}.Dial(ctx, e.wsURL+path)
	if err != nil {
		e.t.Fatalf("dial %s: %v", path, err)
	}
	c := &client{t: e.t, conn: conn, frames: make(chan frame, 1024), done: make(chan struct{})}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	go c.read(bufio.NewReader(r))
	e.t.Cleanup(func() { _ = conn.Close() })
	return c
}

// connect runs the clients' connect: ticket, dial "<socket_url>/?ticket=",
// v1.connected.
func (e *env) connect(key string) *client {
	e.t.Helper()
	c := e.dial("/talo/?ticket=" + e.ticket(key))
	c.expect(`{"res":"v1.connected","data":{}}`)
	return c
}

func (c *client) read(r *bufio.Reader) {
	defer close(c.done)
	for {
		f, err := wstest.ReadFrame(r, wstest.MaxFrame)
		if err != nil {
			return
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			if !c.noPong.Load() {
				_ = c.write(ws.NewPongFrame(f.Payload))
			}
		case ws.OpPong:
		case ws.OpClose:
			c.closeMu.Lock()
			c.closeAt = &frame{op: ws.OpClose, payload: f.Payload}
			c.closeMu.Unlock()
			_ = c.write(ws.NewCloseFrame(f.Payload))
			_ = c.conn.Close()
			return
		default:
			c.frames <- frame{op: f.Header.OpCode, payload: f.Payload}
		}
	}
}

func (c *client) write(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.conn, ws.MaskFrame(f))
}

func (c *client) send(text string) {
	c.t.Helper()
	if err := c.write(ws.NewTextFrame([]byte(text))); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next text frame's payload.
func (c *client) next() string {
	c.t.Helper()
	var f frame
	select {
	case f = <-c.frames:
	case <-c.done:
		select {
		case f = <-c.frames:
		default:
			c.t.Fatalf("connection closed while waiting for a frame")
		}
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no frame within 5 s")
	}
	if f.op != ws.OpText {
		c.t.Fatalf("got a %v frame, want text", f.op)
	}
	return string(f.payload)
}

// expect asserts the next frame byte for byte.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.next(); got != want {
		c.t.Fatalf("frame\n got %s\nwant %s", got, want)
	}
}

// expectPrefix asserts the start of the next frame and returns it.
func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.next()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("frame\n got %s\nwant prefix %s", got, prefix)
	}
	return got
}

// silent asserts that nothing arrives before a marker: it round-trips a
// heartbeat, which the server echoes after everything queued before it,
// so no timing is involved. A closed connection is a failure, not silence.
func (c *client) silent() {
	c.t.Helper()
	c.send("v1.heartbeat")
	if got := c.next(); got != "v1.heartbeat" {
		c.t.Fatalf("unexpected frame %s", got)
	}
}

// expectClosed waits for the server's close and returns its code and
// reason (code 0: no close frame or no status).
func (c *client) expectClosed() (uint16, string) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.t.Fatalf("still open after 5 s")
	}
	select {
	case f := <-c.frames:
		c.t.Fatalf("got %q before the close", f.payload)
	default:
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeAt == nil || len(c.closeAt.payload) < 2 {
		return 0, ""
	}
	return binary.BigEndian.Uint16(c.closeAt.payload), string(c.closeAt.payload[2:])
}

// waitConnections waits until the server has n open sockets (closes are
// handled asynchronously after the peer goes).
func (e *env) waitConnections(n int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Connections() != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d open sockets, want %d", e.srv.Connections(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// errors is switchboard_protocol_errors_total{protocol="talo",reason}.
func (e *env) errors(reason string) float64 {
	return e.metrics.Value("switchboard_protocol_errors_total", "protocol", "talo", "reason", reason)
}
