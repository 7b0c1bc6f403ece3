package dcl

import (
	"bufio"
	"context"
	"github.com/switchboard-rt/switchboard/internal/transport"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/wstest"
)

// testEnv is a ws-room server on real loopback sockets.
type testEnv struct {
	t       testing.TB
	srv     *Server
	metrics *metrics.Metrics
	http    *httptest.Server
	wsURL   string

	// Stepped environments only (newSteppedEnv): the wheel does not run
	// by itself and the handshake clock is the test's; step moves both.
	wheel *timewheel.Wheel
	clock *testClock
}

// testClock is a clock the test moves by hand, from the real time at
// which it was made (ephemeral keys in the test chains are valid for 10
// minutes of it).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const testTick = 10 * time.Millisecond

// newEnv starts a server; mutate adjusts the options first. Handshake
// stages get 400 ms unless mutate says otherwise, so timeouts are quick.
// The wheel runs in real time (joined peers' idle pings need it).
func newEnv(t testing.TB, mutate func(*Options)) *testEnv {
	t.Helper()
	return startEnv(t, false, mutate)
}

// newSteppedEnv is newEnv with a wheel and a handshake clock that move
// only when the test calls step: a timer fires at an exact step, and a
// close that happens without a step was not a timer's.
func newSteppedEnv(t testing.TB, mutate func(*Options)) *testEnv {
	t.Helper()
	return startEnv(t, true, mutate)
}

// step moves the handshake clock and the wheel forward by d, one tick at
// a time, in the test's goroutine: every timer due meanwhile has fired
// (and acted) when it returns.
func (e *testEnv) step(d time.Duration) {
	for ; d > 0; d -= testTick {
		e.clock.advance(testTick)
		e.wheel.Advance()
	}
}

// serverSessions are the open connections' sessions.
func (e *testEnv) serverSessions() []*session { return e.srv.conns.AppendTo(nil) }

// waitSessions waits until the server has n connections (an upgrade
// completes for the client before the server has registered it).
func (e *testEnv) waitSessions(n int) {
	e.t.Helper()
	eventually(e.t, func() bool { return e.srv.Connections() == n }, "%d connections", n)
}

// openSessions counts sessions the server has not started to close.
func (e *testEnv) openSessions() int {
	n := 0
	for _, ss := range e.serverSessions() {
		ss.mu.Lock()
		if !ss.closing {
			n++
		}
		ss.mu.Unlock()
	}
	return n
}

func startEnv(t testing.TB, stepped bool, mutate func(*Options)) *testEnv {
	t.Helper()
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return startEnvOn(t, ctx, h, m, stepped, mutate)
}

// startEnvOn starts a server on a started hub h (whose observer is m);
// ctx ends with the test.
func startEnvOn(t testing.TB, ctx context.Context, h *hub.Hub, m *metrics.Metrics, stepped bool, mutate func(*Options)) *testEnv {
	t.Helper()
	wheel := timewheel.New(testTick, 512)
	var clock *testClock
	if stepped {
		clock = &testClock{now: time.Now()}
	} else {
		go wheel.Run(ctx)
	}
	poller, err := transport.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = poller.Close() }) // after the HTTP server's cleanup
	opts := Options{Hub: h, Wheel: wheel, Metrics: m, HandshakeTimeout: 400 * time.Millisecond, Logger: testLogger(), Poller: poller,
		PathPrefixes: []string{"/rooms", "/mini-comms"}}
	if clock != nil {
		opts.Now = clock.Now
	}
	if mutate != nil {
		mutate(&opts)
	}
	s := NewServer(opts)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := s.Mount(mux); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	e := &testEnv{t: t, srv: s, metrics: m, http: hs, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http")}
	if stepped {
		e.wheel, e.clock = wheel, clock
	}
	return e
}

// errCount is switchboard_protocol_errors_total{protocol="dcl",reason}.
func (e *testEnv) errCount(reason string) float64 {
	return e.metric("switchboard_protocol_errors_total", "protocol", "dcl", "reason", reason)
}

// metric is the value of the series of name whose labels include the
// given name/value pairs (0 when there is none).
func (e *testEnv) metric(name string, labels ...string) float64 {
	return e.metrics.Value(name, labels...)
}

// waitErr waits until the error counter for reason reaches want.
func (e *testEnv) waitErr(reason string, want float64) {
	e.t.Helper()
	eventually(e.t, func() bool { return e.errCount(reason) >= want }, "errors{reason="+reason+"} >= %v", want)
}

func eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// frame is one frame the client received.
type frame struct {
	op      ws.OpCode
	payload []byte
}

// client is a minimal WebSocket client on gobwas/ws that records every
// frame, answers pings (unless noPong) and the server's close frame.
type client struct {
	t        testing.TB
	conn     net.Conn
	hs       ws.Handshake
	wmu      sync.Mutex
	frames   chan frame
	done     chan struct{} // closed when the reader ends
	closeMu  sync.Mutex
	closeGot *frame // the server's close frame, if any
	noPong   atomic.Bool
	stalled  atomic.Bool // stop reading (a slow consumer)
	discard  atomic.Bool // count data frames instead of keeping them (benchmarks)
	count    atomic.Int64
	release  chan struct{} // closed at cleanup, lets a stalled reader go
	pings    int
}

func (e *testEnv) dial(path string, protocols ...string) *client {
	e.t.Helper()
	c, err := e.tryDial(path, protocols...)
	if err != nil {
		e.t.Fatalf("dial %s: %v", path, err)
	}
	return c
}

func (e *testEnv) tryDial(path string, protocols ...string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, hs, err := ws.Dialer{Protocols: protocols}.Dial(ctx, e.wsURL+path)
	if err != nil {
		return nil, err
	}
	c := &client{t: e.t, conn: conn, hs: hs, frames: make(chan frame, 4096), done: make(chan struct{}), release: make(chan struct{})}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	go c.read(bufio.NewReader(r))
	e.t.Cleanup(func() { close(c.release); _ = conn.Close() })
	return c, nil
}

func (c *client) read(r *bufio.Reader) {
	defer close(c.done)
	for {
		if c.stalled.Load() {
			<-c.release
			return
		}
		f, err := wstest.ReadFrame(r, wstest.MaxFrame)
		if err != nil {
			return
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			c.closeMu.Lock()
			c.pings++
			c.closeMu.Unlock()
			if !c.noPong.Load() {
				// A pong the server no longer takes is for the test's
				// own checks to notice, not this reader.
				_ = c.write(ws.NewPongFrame(f.Payload))
			}
		case ws.OpPong:
		case ws.OpClose:
			c.closeMu.Lock()
			c.closeGot = &frame{op: ws.OpClose, payload: f.Payload}
			c.closeMu.Unlock()
			_ = c.write(ws.NewCloseFrame(f.Payload)) // the server may have closed already
			_ = c.conn.Close()
			return
		default:
			if c.discard.Load() {
				c.count.Add(1)
				continue
			}
			c.frames <- frame{op: f.Header.OpCode, payload: f.Payload}
		}
	}
}

func (c *client) write(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.conn, ws.MaskFrame(f))
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	if err := c.write(ws.NewBinaryFrame(b)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) send(p *dclpb.WsPacket) {
	c.t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *client) update(body []byte, unreliable bool) {
	c.send(&dclpb.WsPacket{Message: &dclpb.WsPacket_PeerUpdateMessage{PeerUpdateMessage: &dclpb.WsPeerUpdate{Body: body, Unreliable: unreliable}}})
}

// next returns the next packet within d, or fails.
func (c *client) next(d time.Duration, what string) *dclpb.WsPacket {
	c.t.Helper()
	var f frame
	select {
	case f = <-c.frames:
	case <-c.done:
		// Frames read before the close still count.
		select {
		case f = <-c.frames:
		default:
			c.t.Fatalf("%s: connection closed", what)
		}
	case <-time.After(d):
		c.t.Fatalf("%s: nothing within %v", what, d)
	}
	{
		if f.op != ws.OpBinary {
			c.t.Fatalf("%s: got a %v frame, want binary", what, f.op)
		}
		p := &dclpb.WsPacket{}
		if err := proto.Unmarshal(f.payload, p); err != nil {
			c.t.Fatalf("%s: undecodable packet %x: %v", what, f.payload, err)
		}
		return p
	}
}

// nextUpdate returns the next packet, which must be a peer update with
// body want: the positive marker of "nothing else arrived before it".
func (c *client) nextUpdate(want string, what string) *dclpb.WsPeerUpdate {
	c.t.Helper()
	p := c.next(2*time.Second, what)
	u := p.GetPeerUpdateMessage()
	if u == nil || string(u.Body) != want {
		c.t.Fatalf("%s: got %v, want the update %q first", what, p, want)
	}
	return u
}

// waitRelayed waits until the server has relayed n peer updates in all
// (dcl_ws_rooms_sent_messages_total): whatever they delivered is queued.
func (e *testEnv) waitRelayed(n float64) {
	e.t.Helper()
	eventually(e.t, func() bool { return e.metric("dcl_ws_rooms_sent_messages_total") >= n }, "%v updates relayed", n)
}

// expectClosed waits for the connection to end within d and asserts that
// no packet arrived before; it returns the server's close frame payload
// (nil when none arrived) and how long it took.
func (c *client) expectClosed(d time.Duration, what string) ([]byte, time.Duration) {
	c.t.Helper()
	start := time.Now()
	select {
	case <-c.done:
	case <-time.After(d):
		c.t.Fatalf("%s: still open after %v", what, d)
	}
	took := time.Since(start)
	select {
	case f := <-c.frames:
		c.t.Fatalf("%s: got a packet %x before the close", what, f.payload)
	default:
	}
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeGot == nil {
		return nil, took
	}
	return c.closeGot.payload, took
}

func (c *client) isOpen() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// peer is a wallet with a delegated ephemeral key, as the kernel holds it.
type peer struct {
	wallet *authchaintest.Identity
	login  authchaintest.Delegation
	addr   string // lower case
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	w, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	eph, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return &peer{wallet: w, login: w.Delegate(eph, time.Now().Add(10*time.Minute)), addr: strings.ToLower(w.Address)}
}

func identification(addr string) *dclpb.WsPacket {
	return &dclpb.WsPacket{Message: &dclpb.WsPacket_PeerIdentification{PeerIdentification: &dclpb.WsIdentification{Address: addr}}}
}

func signedChallenge(chainJSON []byte) *dclpb.WsPacket {
	return &dclpb.WsPacket{Message: &dclpb.WsPacket_SignedChallengeForServer{SignedChallengeForServer: &dclpb.WsSignedChallenge{AuthChainJson: string(chainJSON)}}}
}

// challenge identifies as p (checksummed, as clients send it) and returns
// the challenge.
func (c *client) challenge(p *peer) *dclpb.WsChallengeRequired {
	c.t.Helper()
	c.send(identification(p.wallet.Address))
	ch := c.next(2*time.Second, "challenge").GetChallengeMessage()
	if ch == nil {
		c.t.Fatal("first packet is not a challenge")
	}
	return ch
}

// join runs the kernel's handshake as p and returns the welcome.
func (c *client) join(p *peer) (*dclpb.WsWelcome, *dclpb.WsChallengeRequired) {
	c.t.Helper()
	ch := c.challenge(p)
	c.send(signedChallenge(authchaintest.JSON(p.login.Sign(ch.ChallengeToSign))))
	pkt := c.next(3*time.Second, "welcome")
	w := pkt.GetWelcomeMessage()
	if w == nil {
		c.t.Fatalf("want welcome, got %v", pkt)
	}
	return w, ch
}

// joined dials room and joins as p.
func (e *testEnv) joined(room string, p *peer) (*client, *dclpb.WsWelcome) {
	e.t.Helper()
	c := e.dial("/rooms/" + room)
	w, _ := c.join(p)
	return c, w
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// testLogger discards logs unless DCL_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("DCL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
