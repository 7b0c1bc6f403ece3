package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// taloKey provisions a game and a full-access key in a fresh SQLite file,
// as "switchboard talo create-game / create-key" do, and returns both.
func taloKey(t *testing.T) (dbPath, key string) {
	t.Helper()
	dbPath = filepath.Join(t.TempDir(), "talo.db")
	st, err := store.Open(context.Background(), store.Options{Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	}()
	admin := talo.NewAdmin(st)
	game, err := admin.CreateGame(context.Background(), "Test Game")
	if err != nil {
		t.Fatal(err)
	}
	key, err = admin.CreateKey(context.Background(), game, []string{talo.ScopeFullAccess})
	if err != nil {
		t.Fatal(err)
	}
	return dbPath, key
}

// taloTicket asks the server for a socket ticket with key.
func taloTicket(t *testing.T, base, key string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/socket-tickets", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var v struct{ Ticket string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 || v.Ticket == "" {
		t.Fatalf("socket ticket: %d %v %+v", resp.StatusCode, err, v)
	}
	return v.Ticket
}

// dialTalo opens a Talo socket and wants v1.connected.
func dialTalo(t *testing.T, url string) net.Conn {
	t.Helper()
	c, br, _, err := ws.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rw := struct {
		io.Reader
		io.Writer
	}{c, c}
	if br != nil {
		rw.Reader = io.MultiReader(br, c)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := wsutil.ReadServerText(rw); err != nil || string(p) != `{"res":"v1.connected","data":{}}` {
		t.Fatalf("greeting %s %v", p, err)
	}
	return bufferedConn{c, rw.Reader}
}

// The assembled server serves Talo from its configuration: the HTTP routes
// at the root, the socket at socket_path and below, and on socket_listen
// at any path; the shutdown closes the sockets with 1001.
func TestTaloServedFromConfig(t *testing.T) {
	db, key := taloKey(t)
	socketAddr := freePort(t)
	addr, stop := startServer(t, "damon: {enabled: false}\ndcl: {enabled: false}\n"+
		"talo: {store_path: \""+db+"\", socket_listen: \""+socketAddr+"\", http_rate_limits: false}\n")
	base := "http://" + addr

	req, _ := http.NewRequest("GET", base+"/v1/health-check", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("health-check: %d", resp.StatusCode)
	}

	conns := []net.Conn{
		dialTalo(t, "ws://"+addr+"/talo/?ticket="+taloTicket(t, base, key)),
		dialTalo(t, "ws://"+socketAddr+"/?ticket="+taloTicket(t, base, key)),
		dialTalo(t, "ws://"+socketAddr+"/any/path?ticket="+taloTicket(t, base, key)),
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if code := readClose(t, c); code != 1001 {
			t.Errorf("socket %d: close %d, want 1001", i, code)
		}
	}
}

// readClose reads frames up to the close frame and returns its code.
func readClose(t *testing.T, c net.Conn) ws.StatusCode {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		h, err := ws.ReadHeader(c)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
			return code
		}
	}
}

// A socket path another protocol holds stops the server at New, naming
// the Talo setting.
func TestTaloSocketPathClashNamesTheSetting(t *testing.T) {
	cfg, err := config.Parse([]byte("listen: \"127.0.0.1:0\"\ntalo: {socket_path: /rooms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.HasPrefix(err.Error(), "talo.socket_path:") {
		t.Fatalf("New: %v", err)
	}
}

// A store that cannot be opened stops the server at New with the setting.
func TestTaloBadStoreIsAStartupError(t *testing.T) {
	cfg, err := config.Parse([]byte("listen: \"127.0.0.1:0\"\ntalo: {store_path: \"" + filepath.Join(t.TempDir(), "missing-dir", "talo.db") + "\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "talo.store_path") {
		t.Fatalf("New: %v", err)
	}
}

// bufferedConn reads what the handshake's reader holds before the socket.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// talo.enabled: false leaves no Talo route and opens no store.
func TestTaloDisabledServesNothing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "talo.db")
	addr, stop := startServer(t, "damon: {enabled: false}\ntalo: {enabled: false, store_path: \""+db+"\"}\n")
	for _, path := range []string{"/v1/health-check", "/public/health", "/talo/"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("the store was created: %v", err)
	}
}
