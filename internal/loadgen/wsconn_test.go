package loadgen

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// rawServer runs script on every upgraded connection.
func rawServer(t *testing.T, script func(nc net.Conn)) Target {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer func() { _ = nc.Close() }() // the script has finished with the connection
		script(nc)
	}))
	t.Cleanup(srv.Close)
	return testTarget(t, srv)
}

func dialTest(t *testing.T, tg Target, onMsg MessageFunc) (*Conn, error) {
	t.Helper()
	return Dial(context.Background(), 1, DialOptions{
		URL: tg.WSURL(), Dialer: newSourceDialer(nil, time.Second), Timeout: 2 * time.Second,
		Clock: NewClock(), OnMsg: onMsg,
	})
}

const established = `{"event":"pusher:connection_established","data":"{\"socket_id\":\"12.34\",\"activity_timeout\":30}"}`

func TestConnControlFramesAndFragments(t *testing.T) {
	pong := make(chan string, 1)
	closed := make(chan struct{})
	tg := rawServer(t, func(nc net.Conn) {
		_ = wsutil.WriteServerText(nc, []byte(established))
		// A message in three fragments with a ping between them.
		_ = ws.WriteFrame(nc, ws.NewFrame(ws.OpText, false, []byte(`{"event":"sb-bench","data":`)))
		_ = ws.WriteFrame(nc, ws.NewPingFrame([]byte("hb")))
		_ = ws.WriteFrame(nc, ws.NewFrame(ws.OpContinuation, false, []byte(`"{\"sbt\":[0,1,`)))
		_ = ws.WriteFrame(nc, ws.NewFrame(ws.OpContinuation, true, []byte(`2]}"}`)))
		h, err := ws.ReadHeader(nc)
		if err == nil && h.OpCode == ws.OpPong {
			p := make([]byte, h.Length)
			_, _ = nc.Read(p)
			ws.Cipher(p, h.Mask, 0)
			pong <- string(p)
		}
		_ = ws.WriteFrame(nc, ws.NewCloseFrame(ws.NewCloseFrameBody(4200, "bye")))
		<-closed
	})
	got := make(chan string, 4)
	c, err := dialTest(t, tg, func(_ *Conn, ev, msg []byte) { got <- string(ev) + "|" + string(msg) })
	if err != nil {
		t.Fatal(err)
	}
	defer close(closed)
	if c.SocketID != "12.34" || c.ActivityTimeout != 30*time.Second {
		t.Fatalf("handshake: %q %v", c.SocketID, c.ActivityTimeout)
	}
	select {
	case m := <-got:
		if !strings.HasPrefix(m, "sb-bench|") {
			t.Fatalf("message %q", m)
		}
		if step, seq, ns, ok := parseStamp([]byte(m)); !ok || step != 0 || seq != 1 || ns != 2 {
			t.Fatalf("reassembled message lost its stamp: %q", m)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no message")
	}
	select {
	case p := <-pong:
		if p != "hb" {
			t.Fatalf("pong payload %q", p)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no pong")
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("close frame did not end the connection")
	}
	if c.Alive() {
		t.Fatal("Alive after close")
	}
}

func TestConnRefusedHandshake(t *testing.T) {
	tg := rawServer(t, func(nc net.Conn) {
		_ = wsutil.WriteServerText(nc, []byte(`{"event":"pusher:error","data":{"code":4001,"message":"App key x does not exist."}}`))
		_ = ws.WriteFrame(nc, ws.NewCloseFrame(ws.NewCloseFrameBody(4001, "")))
	})
	_, err := dialTest(t, tg, nil)
	if err == nil || !strings.Contains(err.Error(), "4001") {
		t.Fatalf("err = %v", err)
	}
}

func TestConnSubscribeErrorAndPusherPing(t *testing.T) {
	tg := rawServer(t, func(nc net.Conn) {
		_ = wsutil.WriteServerText(nc, []byte(established))
		for {
			b, err := wsutil.ReadClientText(nc)
			if err != nil {
				return
			}
			switch {
			case strings.Contains(string(b), "pusher:subscribe"):
				// Pusher's non-fatal error carries no channel.
				_ = wsutil.WriteServerText(nc, []byte(`{"event":"pusher:error","data":{"code":null,"message":"Invalid signature"}}`))
				_ = wsutil.WriteServerText(nc, []byte(`{"event":"pusher:ping","data":{}}`))
			case strings.Contains(string(b), "pusher:pong"):
				_ = wsutil.WriteServerText(nc, []byte(`{"event":"got-pong"}`))
			}
		}
	})
	got := make(chan string, 4)
	c, err := dialTest(t, tg, func(_ *Conn, ev, _ []byte) { got <- string(ev) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Subscribe(ctx, "private-x", "bad", ""); err == nil || !strings.Contains(err.Error(), "Invalid signature") {
		t.Fatalf("subscribe err = %v", err)
	}
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev := <-got:
			if ev == "got-pong" {
				return
			}
		case <-deadline:
			t.Fatal("pusher:ping was not answered with pusher:pong")
		}
	}
}

func TestPingAfter(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{30 * time.Second, 20 * time.Second},
		{120 * time.Second, 110 * time.Second},
		{0, 110 * time.Second},
		{time.Hour, 110 * time.Second},
		{10 * time.Second, 5 * time.Second},
	} {
		if got := pingAfter(tc.in); got != tc.want {
			t.Errorf("pingAfter(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
