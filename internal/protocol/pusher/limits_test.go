package pusher

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// Limits a client meets: the client-event rate, presence member size, the
// send queue.

// The client-event bucket holds ClientEventsPerSecond tokens and refills
// continuously at that rate, on the server's clock (a fake one here).
func TestClientEventRateLimitRefillsOnTheClock(t *testing.T) {
	clock := newFakeClock()
	e := newEnvClock(t, func(c *config.Config) { c.Pusher.Apps[0].Limits.ClientEventsPerSecond = 2 }, clock.Now)
	a, b := e.connect(), e.connect()
	a.join("private-rate", "")
	b.join("private-rate", "")
	send := func(n int) {
		t.Helper()
		a.send(`{"event":"client-n","channel":"private-rate","data":` + itoa(n) + `}`)
	}
	limited := func() {
		t.Helper()
		f := a.read()
		if f.Event != "pusher:error" || !strings.Contains(string(f.Data), `"code":4301`) ||
			!strings.Contains(string(f.Data), "(2 per second)") {
			t.Fatalf("want 4301, got %s", f.raw)
		}
		a.nothingBeforePong()
	}
	delivered := func(n int) {
		t.Helper()
		want := `{"event":"client-n","channel":"private-rate","data":` + itoa(n) + `}`
		if f := b.read(); f.raw != want {
			t.Fatalf("b got %s, want %s", f.raw, want)
		}
	}

	send(1)
	send(2)
	a.nothingBeforePong() // both within the burst of 2: no error
	delivered(1)
	delivered(2)
	send(3)
	limited()

	clock.Advance(499 * time.Millisecond) // 0.998 tokens: still empty
	send(4)
	limited()
	clock.Advance(time.Millisecond) // 2 tokens per second: one after 500 ms
	send(5)
	a.nothingBeforePong()
	delivered(5)
	send(6)
	limited()

	clock.Advance(time.Hour) // the bucket caps at its size, 2
	send(7)
	send(8)
	send(9)
	limited()
	delivered(7)
	delivered(8)
	b.nothingBeforePong() // 3, 4, 6 and 9 never reached b
}

// A presence join that takes its member from the signed-in user (no
// channel_data) obeys max_presence_member_bytes like channel_data does.
func TestPresenceIdentityFromSigninObeysMemberLimit(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pusher.Apps[0].Limits.MaxPresenceMemberBytes = 20 })
	c, other := e.connect(), e.connect()
	other.join("presence-x", `{"user_id":"other"}`)
	signin(c, `{"id":"me","user_info":{"name":"`+strings.Repeat("x", 30)+`"}}`)
	c.expect("pusher:signin_success")
	c.subscribe("presence-x", pushersign.ChannelAuth("app-key", "app-secret", c.socketID, "presence-x", ""), "")
	if f := c.expect("pusher:error"); !strings.Contains(string(f.Data), "over the limit of 20") {
		t.Fatalf("error %s", f.raw)
	}
	if se := c.expect("pusher:subscription_error"); se.Channel != "presence-x" || !strings.Contains(se.dataString(), `"status":4009`) {
		t.Fatalf("subscription_error %s", se.raw)
	}
	c.nothingBeforePong()
	other.nothingBeforePong() // no member_added for the refused user
}

// A subscriber that stops reading is closed with 4100 (pusher-js backs off
// and reconnects) once its send queue, limits.send_queue_bytes, overflows.
// Publishing never waits for it, and a subscriber that reads gets every
// event in order meanwhile.
func TestSlowConsumerClosedWith4100(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Limits.SendQueueBytes = 256 << 10 })
	stalled, healthy := e.connect(), e.connect()
	stalled.join("news", "")
	healthy.join("news", "")
	if tcp, ok := underlyingTCP(stalled.nc); ok {
		_ = tcp.SetReadBuffer(64 << 10) // kernel buffers hold less of what it never reads
	}

	// The healthy reader runs on its own goroutine; the publisher stays at
	// most 8 events ahead of it, so only the stalled queue fills. (The
	// queue counts a batch being written until all of it is written, so
	// the healthy one holds up to twice that: 64 KiB, a quarter of it.)
	const n, size, ahead = 4000, 4 << 10, 8
	read := make(chan int, n)
	readErr := make(chan error, 1)
	go func() {
		for i := range n {
			_ = healthy.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			h, err := ws.ReadHeader(healthy.nc)
			if err != nil {
				readErr <- err
				return
			}
			p := make([]byte, h.Length)
			if _, err := readFull(healthy.nc, p); err != nil {
				readErr <- err
				return
			}
			if want := fmt.Sprintf(`{"event":"e","channel":"news","data":"%05d`, i); !strings.HasPrefix(string(p), want) {
				readErr <- fmt.Errorf("event %d: got %.60q", i, p)
				return
			}
			read <- i
		}
	}()
	pad := strings.Repeat("x", size)
	ctx := context.Background()
	for i := range n {
		if i >= ahead {
			select {
			case <-read:
			case err := <-readErr:
				t.Fatalf("healthy reader: %v", err)
			}
		}
		if err := e.srv.Trigger(ctx, e.app, TriggerEvent{Name: "e", Data: fmt.Sprintf("%05d", i) + pad, Channels: []string{"news"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range ahead {
		select {
		case <-read:
		case err := <-readErr:
			t.Fatalf("healthy reader: %v", err)
		}
	}
	healthy.nothingBeforePong()
	// What the kernel buffered arrives, then the close that replaced the
	// rest of the queue.
	stalled.expectClose(4100)
}

// underlyingTCP finds the *net.TCPConn under a dialed connection.
func underlyingTCP(nc net.Conn) (*net.TCPConn, bool) {
	if b, ok := nc.(*bufferedConn); ok {
		nc = b.Conn
	}
	tcp, ok := nc.(*net.TCPConn)
	return tcp, ok
}
