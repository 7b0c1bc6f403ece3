package damon

import (
	"context"
	"encoding/json"
	"github.com/switchboard-rt/switchboard/internal/transport"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
)

const testToken = "secret"

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// testEnv is a Damon server on real loopback sockets: raw TCP and an
// httptest WebSocket endpoint, on a memory-engine hub.
type testEnv struct {
	t     *testing.T
	srv   *Server
	m     *metrics.Metrics
	tcp   string
	wsURL string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T, mutate func(*Options)) *testEnv {
	t.Helper()
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	h := hub.New(memory.New(), m)
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	poller, err := transport.NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = poller.Close() }) // after the drain below
	opts := Options{Hub: h, Metrics: m, Logger: quietLogger(), Listen: "127.0.0.1:0", Token: testToken, Poller: poller}
	if mutate != nil {
		mutate(&opts)
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(s.ServeWS))
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.Drain(dctx)
		dcancel()
		hs.Close()
		cancel()
	})
	e := &testEnv{t: t, srv: s, m: m, wsURL: "ws" + strings.TrimPrefix(hs.URL, "http")}
	if a := s.Addr(); a != nil {
		e.tcp = a.String()
	}
	return e
}

// client is one test connection over either transport. A reader goroutine
// splits what arrives into documents.
type client struct {
	t         *testing.T
	name      string
	nc        net.Conn
	ws        bool
	docs      chan string
	done      chan struct{} // the reader saw the end of the connection
	wmu       sync.Mutex    // serialises writes
	mu        sync.Mutex
	endErr    error
	closeCode ws.StatusCode
}

type dialer func(e *testEnv, name string) *client

var transports = []struct {
	name string
	dial dialer
}{
	{"tcp", (*testEnv).dialTCP},
	{"ws", (*testEnv).dialWS},
}

func (e *testEnv) dialTCP(name string) *client {
	e.t.Helper()
	return e.dialTCPFrom(nil, name)
}

// dialTCPFrom dials from local address ip (nil: the system's choice); any
// 127.0.0.0/8 address works on Linux loopback, so tests get several
// source addresses.
func (e *testEnv) dialTCPFrom(ip net.IP, name string) *client {
	e.t.Helper()
	d := net.Dialer{}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.Dial("tcp", e.tcp)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, name: name, nc: nc, docs: make(chan string, 4096), done: make(chan struct{})}
	e.t.Cleanup(func() { _ = nc.Close() })
	go c.readTCP()
	return c
}

func (e *testEnv) dialWS(name string) *client {
	e.t.Helper()
	return e.dialWSFrom(nil, name)
}

// dialWSFrom is dialTCPFrom for the WebSocket endpoint.
func (e *testEnv) dialWSFrom(ip net.IP, name string) *client {
	e.t.Helper()
	d := ws.Dialer{}
	if ip != nil {
		d.NetDial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
			return nd.DialContext(ctx, network, addr)
		}
	}
	nc, _, _, err := d.Dial(context.Background(), e.wsURL)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &client{t: e.t, name: name, nc: nc, ws: true, docs: make(chan string, 4096), done: make(chan struct{})}
	e.t.Cleanup(func() { _ = nc.Close() })
	go c.readWS()
	return c
}

func (c *client) readTCP() {
	defer close(c.done)
	// A generous decoder: the test checks what the server sends, not limits.
	dec := wire.NewDecoder(wire.Limits{MaxDocumentSize: 1 << 24})
	buf := make([]byte, 64<<10)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			_ = dec.Feed(buf[:n], func(f wire.Frame) error {
				if f.Bad != wire.ReasonNone {
					c.push("MALFORMED:" + string(f.Doc))
				} else {
					c.push(string(f.Doc))
				}
				return nil
			})
		}
		if err != nil {
			c.mu.Lock()
			c.endErr = err
			c.mu.Unlock()
			return
		}
	}
}

func (c *client) readWS() {
	defer close(c.done)
	for {
		msgs, err := wsutil.ReadServerMessage(c.nc, nil)
		for _, m := range msgs {
			switch m.OpCode {
			case ws.OpText:
				c.push(string(m.Payload))
			case ws.OpBinary:
				c.docs <- "BINARY:" + string(m.Payload)
			case ws.OpClose:
				code, _ := ws.ParseCloseFrameData(m.Payload)
				c.mu.Lock()
				c.closeCode = code
				c.mu.Unlock()
				_ = wsutil.WriteClientMessage(c.nc, ws.OpClose, m.Payload)
			case ws.OpPing:
				_ = wsutil.WriteClientMessage(c.nc, ws.OpPong, m.Payload)
			}
		}
		if err != nil {
			c.mu.Lock()
			c.endErr = err
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		closed := c.closeCode != 0
		c.mu.Unlock()
		if closed {
			return
		}
	}
}

// send writes one document: one write on TCP, one text frame on WebSocket.
func (c *client) send(doc string) {
	c.t.Helper()
	if err := c.write(doc); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// write is send for any goroutine.
func (c *client) write(doc string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ws {
		return wsutil.WriteClientText(c.nc, []byte(doc))
	}
	_, err := io.WriteString(c.nc, doc)
	return err
}

// push hands a received document to the test.
func (c *client) push(doc string) {
	c.docs <- doc
}

func (c *client) next() string {
	c.t.Helper()
	return c.nextWithin(3 * time.Second)
}

// nextWithin returns the next document. The end of the connection with
// nothing queued fails at once (it is not "nothing yet").
func (c *client) nextWithin(d time.Duration) string {
	c.t.Helper()
	select {
	case doc := <-c.docs:
		return doc
	case <-c.done:
		select {
		case doc := <-c.docs:
			return doc
		default:
			c.t.Fatalf("%s: connection ended (%v) while a document was expected", c.name, c.err())
		}
	case <-time.After(d):
		c.t.Fatalf("%s: nothing received within %v", c.name, d)
	}
	return ""
}

func (c *client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endErr
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.next(); got != want {
		c.t.Fatalf("%s: got\n  %s\nwant\n  %s", c.name, got, want)
	}
}

// nothingFrom asserts that c got nothing from what the senders sent so
// far, without waiting for a silence: each sender's PING round trip proves
// the server acted on everything it sent before (the hub delivers on the
// sender's reader goroutine, into c's queue), then c's own PONG must be
// the next document c reads. A closed c fails.
func (c *client) nothingFrom(senders ...*client) {
	c.t.Helper()
	for _, s := range senders {
		if s != c {
			s.ping()
		}
	}
	c.ping()
}

// expectClosed waits for the server to end the connection with nothing
// more delivered.
func (c *client) expectClosed() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		c.t.Fatalf("%s: still open", c.name)
	}
	select {
	case doc := <-c.docs:
		c.t.Fatalf("%s: unexpected %s before close", c.name, doc)
	default:
	}
}

// ping checks that the connection is up and in sync: a client PING gets a
// PONG, and nothing was queued before it.
func (c *client) ping() {
	c.t.Helper()
	c.send(`{"op":3}`)
	c.expect(`{"op":4}`)
}

// identify identifies into group and returns the connection's uuid.
func (c *client) identify(group string) string {
	c.t.Helper()
	c.send(`{"op":1,"data":{"group":` + jsonString(group) + `,"token":"` + testToken + `"}}`)
	return c.identifyReply(-1)
}

func (c *client) identifyReply(pingMS int64) string {
	c.t.Helper()
	got := c.next()
	var r struct {
		Op   *int `json:"op"`
		Data struct {
			ID   string `json:"id"`
			Ping int64  `json:"ping"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(got), &r); err != nil || r.Op == nil || *r.Op != 1 || !uuidV4.MatchString(r.Data.ID) {
		c.t.Fatalf("%s: bad IDENTIFY reply %s", c.name, got)
	}
	want := `{"op":1,"data":{"id":"` + r.Data.ID + `","ping":` + itoa(r.Data.Ping) + `}}`
	if got != want {
		c.t.Fatalf("%s: IDENTIFY reply bytes %s, want %s", c.name, got, want)
	}
	if pingMS >= 0 && r.Data.Ping != pingMS {
		c.t.Fatalf("%s: ping %d, want %d", c.name, r.Data.Ping, pingMS)
	}
	return r.Data.ID
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// idOf returns a forwarded message's "id" and the message with the id
// replaced by "ID", for comparison.
func idOf(t *testing.T, doc string) (string, string) {
	t.Helper()
	i := strings.Index(doc, `"id":"`)
	if i < 0 || len(doc) < i+6+36 {
		t.Fatalf("no id in %s", doc)
	}
	id := doc[i+6 : i+6+36]
	return id, doc[:i+6] + "ID" + doc[i+6+36:]
}

// dropped reads switchboard_damon_dropped_total{reason}.
func (e *testEnv) dropped(reason string) float64 {
	return e.counter("switchboard_damon_dropped_total", map[string]string{"reason": reason})
}

func (e *testEnv) counter(name string, labels map[string]string) float64 {
	pairs := make([]string, 0, 2*len(labels))
	for k, v := range labels {
		pairs = append(pairs, k, v)
	}
	return e.m.Value(name, pairs...)
}

// eventually polls cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// key identifies c (IDENTIFY into a throwaway group) and returns its uuid.
func (c *client) key(e *testEnv) string {
	c.t.Helper()
	return c.identify("key-" + c.name)
}
