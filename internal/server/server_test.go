package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// startServer runs the assembled server on a free loopback port with the
// given YAML on top of a 3 s shutdown timeout. stop shuts it down and says
// how Run ended (or that shutdown hung); it also runs at cleanup.
func startServer(t *testing.T, yaml string) (addr string, stop func() error) {
	t.Helper()
	return startServerLog(t, yaml, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startServerLog is startServer writing its log to log.
func startServerLog(t *testing.T, yaml string, log *slog.Logger) (addr string, stop func() error) {
	t.Helper()
	cfg, err := config.Parse([]byte("listen: \"127.0.0.1:0\"\nshutdown: {timeout: 3s}\n" + yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(t, cfg, log)
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
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				runErr = errors.New("shutdown hung")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	if cfg.TLS.Cert == "" {
		waitReady(t, a.String())
	} // a TLS server's requests wait in untilStarted instead
	return a.String(), stop
}

// waitReady waits for /readyz, as a load balancer would before sending
// clients.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not ready after 10 s (last: %v)", addr, err)
		}
		time.Sleep(5 * time.Millisecond) // a poll, as a load balancer's
	}
}

// metric scrapes /metrics for the exposition line of one series: a name,
// with its labels if it has any ("" when absent).
func metric(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// Idle Pusher connections are parked (no reader goroutine each), the
// metric says how many, and a parked connection still answers at once.
func TestIdlePusherConnectionsPark(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parking needs epoll")
	}
	// Damon's fixed TCP port off, so tests can run side by side.
	addr, stop := startServer(t, `
damon: {enabled: false}
pusher:
  apps: [{id: app-id, key: app-key, secret: app-secret}]
`)
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		c, br, _, err := ws.Dial(context.Background(), "ws://"+addr+"/app/app-key?protocol=7")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		// The greeting may have arrived with the handshake response.
		var r io.Reader = c
		if br != nil {
			r = io.MultiReader(br, c)
		}
		if p, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{r, c}); err != nil || !strings.Contains(string(p), "pusher:connection_established") {
			t.Fatalf("%s %v", p, err)
		}
		if br != nil {
			ws.PutReader(br)
		}
		conns[i] = c
	}
	waitMetric := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got := metric(t, addr, "switchboard_parked_connections")
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("switchboard_parked_connections %q, want %s", got, want)
			}
		}
	}
	waitMetric("20")

	c := conns[7]
	if err := wsutil.WriteClientText(c, []byte(`{"event":"pusher:ping","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if p, err := wsutil.ReadServerText(c); err != nil || string(p) != `{"event":"pusher:pong","data":"{}"}` {
		t.Fatalf("pong: %s %v", p, err)
	}
	waitMetric("20") // one message, then quiet: parked again at once

	if err := conns[3].Close(); err != nil {
		t.Fatal(err)
	}
	waitMetric("19")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
