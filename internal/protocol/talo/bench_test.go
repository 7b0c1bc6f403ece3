package talo_test

// Benchmarks over real loopback sockets (the same machine runs server and
// clients, so the figures include the clients' reading; see docs/talo.md,
// "Performance"):
//
//	go test -run '^$' -bench 'Talo' -benchtime 200x ./internal/protocol/talo/
//
// BenchmarkTaloChannelFanout: one member sends v1.channels.message to a
// channel of n members; every member (the sender included, as in the
// reference) receives it. cpu-ns/delivery is process CPU per (message,
// recipient). BenchmarkTaloIdentify: socket and HTTP identifies per second.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	"github.com/switchboard-rt/switchboard/internal/transport"
	"github.com/switchboard-rt/switchboard/internal/wstest"
)

// benchScopes leave out read:playerPresence, so identifies broadcast to
// nobody and the figures are the channel path's alone.
var benchScopes = []string{"read:players", "write:players", "read:gameChannels", "write:gameChannels"}

type benchEnv struct {
	b     *testing.B
	srv   *talo.Server
	url   string
	wsURL string
	http  *http.Client
	key   string
	stop  func()
}

// newBenchEnv starts a server as the binary does (parked idle sockets on
// a poller, SQLite store), with the limits a benchmark would hit off.
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := metrics.New()
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	poller, err := transport.NewPoller()
	if err != nil {
		b.Fatal(err)
	}
	s, err := talo.NewServer(talo.Options{Hub: h, Metrics: m, Logger: testLogger(), Poller: poller,
		StorePath: filepath.Join(b.TempDir(), "talo.db"), DisableRateLimits: true,
		SocketLimitIdentified: 1 << 30, SocketLimitUnidentified: 1 << 30, PingInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := s.Mount(mux); err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	game, err := s.CreateGame(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	key, err := s.CreateKey(ctx, game, benchScopes)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	e := &benchEnv{b: b, srv: s, url: hs.URL, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http"), http: &http.Client{Transport: tr}, key: key}
	e.stop = func() {
		hs.CloseClientConnections()
		hs.Close()
		tr.CloseIdleConnections()
		_ = s.Close()
		_ = poller.Close()
		cancel()
	}
	return e
}

// do sends an HTTP request and returns the status and body.
func (e *benchEnv) do(method, path string, alias int64) (int, []byte) {
	return e.doBody(method, path, alias, "")
}

func (e *benchEnv) doBody(method, path string, alias int64, body string) (int, []byte) {
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	if alias != 0 {
		req.Header.Set("X-Talo-Alias", fmt.Sprint(alias))
	}
	res, err := e.http.Do(req)
	if err != nil {
		e.b.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

type benchPlayer struct {
	aliasID int64
	token   string
}

func (e *benchEnv) identifyHTTP(identifier string) benchPlayer {
	code, body := e.do("GET", "/v1/players/identify?service=username&identifier="+identifier, 0)
	var v struct {
		Alias       struct{ ID int64 }
		SocketToken string
	}
	if err := json.Unmarshal(body, &v); err != nil || code != 200 {
		e.b.Fatalf("identify %s: %d %s", identifier, code, body)
	}
	return benchPlayer{v.Alias.ID, v.SocketToken}
}

// benchConn is a client socket: read synchronously while setting up, then
// counted by a goroutine that discards payloads.
type benchConn struct {
	conn  net.Conn
	r     *bufio.Reader
	wmu   sync.Mutex
	count atomic.Int64
	bytes atomic.Int64
	done  chan struct{}
}

func (e *benchEnv) connect() *benchConn {
	code, body := e.do("POST", "/v1/socket-tickets", 0)
	var t struct{ Ticket string }
	if err := json.Unmarshal(body, &t); err != nil || code != 200 {
		e.b.Fatalf("ticket: %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dialer{}.Dial(ctx, e.wsURL+"/talo/?ticket="+t.Ticket)
	if err != nil {
		e.b.Fatal(err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	c := &benchConn{conn: conn, r: bufio.NewReaderSize(r, 32<<10), done: make(chan struct{})}
	if got := c.readText(e.b); got != `{"res":"v1.connected","data":{}}` {
		e.b.Fatalf("first frame %s", got)
	}
	return c
}

func (c *benchConn) send(b *testing.B, text string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := ws.WriteFrame(c.conn, ws.MaskFrame(ws.NewTextFrame([]byte(text)))); err != nil {
		b.Fatal(err)
	}
}

func (c *benchConn) readText(b *testing.B) string {
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	for {
		f, err := wstest.ReadFrame(c.r, wstest.MaxFrame)
		if err != nil {
			b.Fatalf("read: %v", err)
		}
		if f.Header.OpCode == ws.OpText {
			return string(f.Payload)
		}
	}
}

// identify sends the socket identify and waits for identify.success.
func (c *benchConn) identify(b *testing.B, p benchPlayer) {
	c.send(b, fmt.Sprintf(`{"req":"v1.players.identify","data":{"playerAliasId":%d,"socketToken":"%s"}}`, p.aliasID, p.token))
	if got := c.readText(b); !strings.HasPrefix(got, `{"res":"v1.players.identify.success"`) {
		b.Fatalf("identify: %s", got)
	}
}

// countFrames reads until the connection ends, counting text frames.
func (c *benchConn) countFrames() {
	defer close(c.done)
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return
		}
		if _, err := c.r.Discard(int(h.Length)); err != nil {
			return
		}
		if h.OpCode == ws.OpText {
			c.bytes.Add(h.Length)
			c.count.Add(1)
		}
	}
}

// BenchmarkTaloChannelFanout: v1.channels.message to channels of 10, 100
// and 1000 members over loopback. At most window messages are in flight.
func BenchmarkTaloChannelFanout(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		e := newBenchEnv(b)
		players := make([]benchPlayer, n)
		for i := range players {
			players[i] = e.identifyHTTP(fmt.Sprintf("p%d", i))
		}
		// Members join before their sockets identify: the joins push to
		// nobody, so setting up 1000 members is not 1000² frames.
		code, body := e.doBody("POST", "/v1/game-channels", players[0].aliasID, `{"name":"bench"}`)
		var ch struct{ Channel struct{ ID int64 } }
		if err := json.Unmarshal(body, &ch); err != nil || code != 200 {
			b.Fatalf("create: %d %s", code, body)
		}
		for _, p := range players[1:] {
			if code, body := e.do("POST", fmt.Sprintf("/v1/game-channels/%d/join", ch.Channel.ID), p.aliasID); code != 200 {
				b.Fatalf("join: %d %s", code, body)
			}
		}
		conns := make([]*benchConn, n)
		for i, p := range players {
			conns[i] = e.connect()
			conns[i].identify(b, p)
			go conns[i].countFrames()
		}
		sender := conns[0]
		msg := fmt.Sprintf(`{"req":"v1.channels.message","data":{"channel":{"id":%d},"message":"%s"}}`, ch.Channel.ID, strings.Repeat("m", 100))
		received := func() (frames, bytes int64) {
			for _, c := range conns {
				frames += c.count.Load()
				bytes += c.bytes.Load()
			}
			return
		}
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			const window = 32
			base, bytes0 := received()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for i := range b.N {
				for int64(i-window)*int64(n) > mustReceived(received)-base {
					time.Sleep(50 * time.Microsecond)
				}
				sender.send(b, msg)
			}
			for mustReceived(received)-base < int64(b.N)*int64(n) {
				time.Sleep(50 * time.Microsecond)
			}
			b.StopTimer()
			deliveries := float64(b.N) * float64(n)
			_, bytes1 := received()
			b.ReportMetric(float64(processCPU(b)-cpu0)/deliveries, "cpu-ns/delivery")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(bytes1-bytes0)/deliveries, "B/frame")
		})
		for _, c := range conns {
			_ = c.conn.Close()
			<-c.done
		}
		e.stop()
	}
}

func mustReceived(f func() (int64, int64)) int64 {
	n, _ := f()
	return n
}

// BenchmarkTaloIdentify: identifies per second from 32 clients at once.
// socket: v1.players.identify on a connected socket (token check, alias
// load, presence write, identify.success); http: GET /v1/players/identify
// of an existing player (alias load, last-seen write, a new socket token).
func BenchmarkTaloIdentify(b *testing.B) {
	const clients = 32
	e := newBenchEnv(b)
	defer e.stop()
	players := make([]benchPlayer, clients)
	conns := make([]*benchConn, clients)
	for i := range players {
		players[i] = e.identifyHTTP(fmt.Sprintf("id%d", i))
		conns[i] = e.connect()
	}
	run := func(b *testing.B, one func(i int)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					one(i)
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "identifies/s")
	}
	b.Run("socket", func(b *testing.B) {
		run(b, func(i int) { conns[i].identify(b, players[i]) })
	})
	b.Run("http", func(b *testing.B) {
		run(b, func(i int) {
			if code, body := e.do("GET", fmt.Sprintf("/v1/players/identify?service=username&identifier=id%d", i), 0); code != 200 {
				b.Errorf("identify: %d %s", code, body)
			}
		})
	})
	for _, c := range conns {
		_ = c.conn.Close()
	}
}
