package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// dialPusher opens a Pusher connection to app-key and reads its
// pusher:connection_established.
func dialPusher(t testing.TB, url string, d ws.Dialer) net.Conn {
	t.Helper()
	c, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if br != nil {
		// The greeting came with the handshake response; read it from there.
		defer ws.PutReader(br)
		p, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{io.MultiReader(br, c), c})
		mustEstablished(t, p, err)
		return c
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := wsutil.ReadServerText(c)
	mustEstablished(t, p, err)
	_ = c.SetReadDeadline(time.Time{})
	return c
}

func mustEstablished(t testing.TB, p []byte, err error) {
	t.Helper()
	if err != nil || !strings.HasPrefix(string(p), `{"event":"pusher:connection_established"`) {
		t.Fatalf("greeting %s %v", p, err)
	}
}

// pingPong sends pusher:ping and wants the pong.
func pingPong(t testing.TB, c net.Conn) {
	t.Helper()
	if err := wsutil.WriteClientText(c, []byte(`{"event":"pusher:ping","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	if p, err := wsutil.ReadServerText(c); err != nil || string(p) != `{"event":"pusher:pong","data":"{}"}` {
		t.Fatalf("pong: %s %v", p, err)
	}
}

// newServer is server.New with Talo's default SQLite file moved from the
// working directory into the test's temporary directory.
func newServer(t testing.TB, cfg *config.Config, log *slog.Logger) (*server.Server, error) {
	t.Helper()
	if cfg.Talo.StorePath == config.DefaultTaloStorePath {
		cfg.Talo.StorePath = filepath.Join(t.TempDir(), "talo.db")
	}
	return server.New(cfg, log)
}
