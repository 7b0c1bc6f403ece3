package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// The front-end as the switchboard binary mounts it: TCP listener as a
// service, /damon on the main listener, counters on /metrics, closed by
// graceful shutdown.
func TestMountedInServer(t *testing.T) {
	tcpAddr := freePort(t)
	httpAddr, stop := startServer(t, `
damon:
  enabled: true
  listen: "`+tcpAddr+`"
  token: tok
  ping_interval: 20s
  websocket_path: /damon
`)

	var tc net.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if tc, err = net.Dial("tcp", tcpAddr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer func() { _ = tc.Close() }()
	br := bufio.NewReader(tc)
	readDoc := func() string {
		t.Helper()
		_ = tc.SetReadDeadline(time.Now().Add(3 * time.Second))
		// One document per write; tests here never get two at once.
		buf := make([]byte, 4096)
		n, err := br.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	if _, err := io.WriteString(tc, `{"op":1,"data":{"group":"g","token":"tok"}}`); err != nil {
		t.Fatal(err)
	}
	if got := readDoc(); !strings.HasPrefix(got, `{"op":1,"data":{"id":"`) || !strings.HasSuffix(got, `","ping":20000}}`) {
		t.Fatalf("identify reply %s", got)
	}

	wc, _, _, err := ws.Dial(context.Background(), "ws://"+httpAddr+"/damon")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wc.Close() }()
	if err := wsutil.WriteClientText(wc, []byte(`{"op":1,"data":{"group":"g","token":"tok"}}`)); err != nil {
		t.Fatal(err)
	}
	if p, err := wsutil.ReadServerText(wc); err != nil || !strings.HasPrefix(string(p), `{"op":1,`) {
		t.Fatalf("%s %v", p, err)
	}
	if err := wsutil.WriteClientText(wc, []byte(`{"op":0,"event":"HI","intent":{"target":"GROUP","identifier":"g"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := readDoc(); !strings.HasPrefix(got, `{"op":0,"event":"HI","intent":{"target":"GROUP","identifier":"g"},"id":"`) {
		t.Fatalf("TCP got %s", got)
	}
	if _, err := io.WriteString(tc, `{op:3}`); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		`switchboard_damon_dropped_total{reason="parse"} 1`,
		`switchboard_damon_forwarded_total{op="event",target="group"} 1`,
		`switchboard_connections{app="damon",protocol="damon"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := br.Read(make([]byte, 10)); err == nil {
		t.Fatalf("TCP connection still open after shutdown (%d bytes)", n)
	}
	if c, err := net.Dial("tcp", tcpAddr); err == nil {
		_ = c.Close()
		t.Fatal("TCP listener still open after shutdown")
	}
}

func TestServerRefusesBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	cfg, err := config.Parse([]byte(`{listen: "127.0.0.1:0", damon: {enabled: true, listen: "` + ln.Addr().String() + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "damon") {
		t.Fatalf("Run with a busy damon port: %v", err)
	}
}
