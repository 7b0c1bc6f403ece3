package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// Without console.enabled there is no console route at all.
func TestConsoleIsOffByDefault(t *testing.T) {
	addr, _ := startServer(t, "damon: {tcp: false}\n") // no fixed TCP port
	resp, err := http.Get("http://" + addr + "/console")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || string(b) != `{"error":"Not Found"}` {
		t.Fatalf("GET /console: %d %s", resp.StatusCode, b)
	}
}

// An open console feed does not hold up a graceful shutdown: the console
// is drained with the protocols, its feed ends, and Run returns long
// before the (here one-minute) shutdown bound.
func TestConsoleFeedEndsAtShutdown(t *testing.T) {
	cfg, err := config.Parse([]byte(`listen: "127.0.0.1:0"
shutdown: {timeout: 60s}
console: {enabled: true, path: /ops/console, token: shutdown-test-token-0123}
damon: {tcp: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	waitReady(t, a.String())

	req, _ := http.NewRequest("GET", "http://"+a.String()+"/ops/console/api/feed", nil)
	req.Header.Set("Authorization", "Bearer shutdown-test-token-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "retry: 2000\n" {
		t.Fatalf("feed starts with %q %v", line, err)
	}
	cancel()
	// The feed ends (EOF, not a cut connection) ...
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	if !strings.Contains(string(rest), "event: history") {
		t.Fatalf("feed carried %q", rest)
	}
	// ... and Run returns without waiting for the shutdown bound.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal(errors.New("shutdown waited for the console feed"))
	}
}
