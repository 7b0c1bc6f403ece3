package server_test

// Issue 13 over real sockets: a config file without pusher.apps serves the
// default app; connection floods from one address get 429 + Retry-After
// before any upgrade (and Damon's TCP listener closes them) while another
// address connects; HTTP API floods get 429 with a JSON error while
// subscribers keep receiving what was published within the limit.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// runConfig starts a server from cfg (its listen addresses already set for
// the test) and stops it at cleanup.
func runConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	srv, err := newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("shutdown hung")
		}
	})
	return a.String()
}

// wsClient is one WebSocket client connection, reading text frames.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	rw   io.ReadWriter
}

// dialWS opens a WebSocket from local address src.
func dialWS(t *testing.T, src, rawURL string) *wsClient {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second, NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		return nd.DialContext(ctx, network, addr)
	}}
	c, br, _, err := d.Dial(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", rawURL, src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var r io.Reader = c
	if br != nil {
		r = io.MultiReader(br, c)
	}
	return &wsClient{t: t, conn: c, rw: struct {
		io.Reader
		io.Writer
	}{r, c}}
}

func (c *wsClient) read() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := wsutil.ReadServerText(c.rw)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(p)
}

func (c *wsClient) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// upgradeStatus sends a WebSocket upgrade request from src and returns the
// response (its body read into the returned string).
func upgradeStatus(t *testing.T, src, addr, path string) (*http.Response, string) {
	t.Helper()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := nd.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// A server refusing at accept may close before it reads the request:
	// the response read below is what the test checks.
	_, _ = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp, string(body)
}

// The report in issue 13: a file with only a log level. The default app
// must still be there.
func TestOneLineConfigServesDefaultApp(t *testing.T) {
	p := filepath.Join(t.TempDir(), "switchboard.yaml")
	if err := os.WriteFile(p, []byte("log: {level: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// Only the addresses change, so that tests can run side by side.
	cfg.Listen, cfg.Damon.Listen = "127.0.0.1:0", "127.0.0.1:0"
	addr := runConfig(t, cfg)
	c := dialWS(t, "127.0.0.1", "ws://"+addr+"/app/app-key?protocol=7&client=js&version=8.4.0")
	if got := c.read(); !strings.Contains(got, `"event":"pusher:connection_established"`) {
		t.Fatalf("first message %s", got)
	}
}

func TestConnectionFloodIsRefusedPerAddress(t *testing.T) {
	tcpAddr := freePort(t)
	// A rate so slow that no token comes back during the test.
	cfg, err := config.Parse([]byte(`
listen: "127.0.0.1:0"
limits: {connection_rate: {per_second: 0.001, burst: 3}}
damon: {listen: "` + tcpAddr + `", token: tok}
`))
	if err != nil {
		t.Fatal(err)
	}
	addr := runConfig(t, cfg)

	// Three connections from 127.0.0.1 on three protocols spend its burst.
	c := dialWS(t, "127.0.0.1", "ws://"+addr+"/app/app-key?protocol=7")
	if got := c.read(); !strings.Contains(got, "pusher:connection_established") {
		t.Fatalf("pusher: %s", got)
	}
	for _, path := range []string{"/damon", "/rooms/lobby"} {
		if resp, body := upgradeStatus(t, "127.0.0.1", addr, path); resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: %s %s", path, resp.Status, body)
		}
	}
	// Every further upgrade from it is refused before the upgrade.
	for _, path := range []string{"/app/app-key?protocol=7", "/damon", "/rooms/lobby"} {
		resp, body := upgradeStatus(t, "127.0.0.1", addr, path)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s: %s, want 429", path, resp.Status)
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 1000 {
			t.Fatalf("%s: Retry-After %q", path, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, "too many new connections from your address") {
			t.Fatalf("%s: body %q", path, body)
		}
	}
	// And so is a Damon TCP connection: closed without a reply.
	if reply, err := damonIdentify(t, "127.0.0.1", tcpAddr); err == nil {
		t.Fatalf("refused TCP connection answered %q", reply)
	}

	// 127.0.0.2 is another client: it connects normally everywhere.
	c2 := dialWS(t, "127.0.0.2", "ws://"+addr+"/app/app-key?protocol=7")
	if got := c2.read(); !strings.Contains(got, "pusher:connection_established") {
		t.Fatalf("127.0.0.2 pusher: %s", got)
	}
	if reply, err := damonIdentify(t, "127.0.0.2", tcpAddr); err != nil || !strings.HasPrefix(reply, `{"op":1,"data":{"id":"`) {
		t.Fatalf("127.0.0.2 damon tcp: %q %v", reply, err)
	}
	// Plain HTTP is not counted: /healthz still answers 127.0.0.1.
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	if v := metric(t, addr, `switchboard_connections_rate_limited_total{listener="websocket"}`); v != "3" {
		t.Fatalf("websocket refusals counted %q, want 3", v)
	}
	if v := metric(t, addr, `switchboard_connections_rate_limited_total{listener="damon_tcp"}`); v != "1" {
		t.Fatalf("damon_tcp refusals counted %q, want 1", v)
	}
	// The connection accepted first is unaffected.
	c.send(`{"event":"pusher:ping","data":{}}`)
	if got := c.read(); got != `{"event":"pusher:pong","data":"{}"}` {
		t.Fatalf("pong %s", got)
	}
}

// damonIdentify connects to Damon's TCP listener from src, identifies, and
// returns the reply; an error when the connection is closed first.
func damonIdentify(t *testing.T, src, addr string) (string, error) {
	t.Helper()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	// The listener starts with Run: retry while nothing listens. Any
	// other failure (a reset can come before connect returns) is the
	// answer.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err = nd.Dial("tcp", addr)
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// The write may already fail on a reset connection.
	if _, err := io.WriteString(c, `{"op":1,"data":{"group":"g","token":"tok"}}`); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if n > 0 {
		return string(buf[:n]), nil
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("no reply and no close: neither accepted nor refused")
	}
	return "", err
}

func TestAPIFloodGets429AndSubscribersKeepReceiving(t *testing.T) {
	cfg, err := config.Parse([]byte(`
listen: "127.0.0.1:0"
damon: {enabled: false}
limits: {api_rate: {per_second: 0.001, burst: 3}}
pusher:
  apps:
    - {id: one, key: key-one, secret: secret-one}
    - {id: two, key: key-two, secret: secret-two}
`))
	if err != nil {
		t.Fatal(err)
	}
	addr := runConfig(t, cfg)
	sub := dialWS(t, "127.0.0.1", "ws://"+addr+"/app/key-one?protocol=7")
	if got := sub.read(); !strings.Contains(got, "pusher:connection_established") {
		t.Fatal(got)
	}
	sub.send(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
	if got := sub.read(); !strings.Contains(got, "pusher_internal:subscription_succeeded") {
		t.Fatal(got)
	}

	publish := func(id, key, secret, data string) (int, string, http.Header) {
		body, _ := json.Marshal(map[string]any{"name": "update", "channel": "news", "data": data})
		path := "/apps/" + id + "/events"
		q := url.Values{}
		pushersign.SignRESTQuery(key, secret, http.MethodPost, path, q, body, time.Now())
		resp, err := http.Post("http://"+addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	for i := 1; i <= 3; i++ {
		if code, body, _ := publish("one", "key-one", "secret-one", strconv.Itoa(i)); code != 200 {
			t.Fatalf("publish %d: %d %s", i, code, body)
		}
	}
	for i := 1; i <= 5; i++ {
		code, body, h := publish("one", "key-one", "secret-one", "flood")
		var e map[string]string
		if code != http.StatusTooManyRequests || h.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &e) != nil ||
			!strings.HasPrefix(e["error"], "too many requests for app one: the limit is 0.001 per second (burst 3) on this node; retry in ") {
			t.Fatalf("flood %d: %d %q %s", i, code, h.Get("Content-Type"), body)
		}
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
			t.Fatalf("Retry-After %q", h.Get("Retry-After"))
		}
	}
	// Another app has its own budget.
	if code, body, _ := publish("two", "key-two", "secret-two", "x"); code != 200 {
		t.Fatalf("app two: %d %s", code, body)
	}
	// The subscriber got exactly the three events published within the
	// limit, in order; the pong after them proves no flood event follows.
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf(`{"event":"update","channel":"news","data":"%d"}`, i)
		if got := sub.read(); got != want {
			t.Fatalf("event %d: %s, want %s", i, got, want)
		}
	}
	sub.send(`{"event":"pusher:ping","data":{}}`)
	if got := sub.read(); got != `{"event":"pusher:pong","data":"{}"}` {
		t.Fatalf("after the events: %s, want the pong", got)
	}
	if v := metric(t, addr, `switchboard_http_api_rate_limited_total{app="one"}`); v != "5" {
		t.Fatalf("api refusals counted %q, want 5", v)
	}
}
