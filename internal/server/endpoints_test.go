package server_test

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// At start the log has one line per enabled protocol with the URLs its
// clients use (issue 13).
func TestStartupLogNamesEveryEndpoint(t *testing.T) {
	tcpAddr, taloAddr := freePort(t), freePort(t)
	var buf syncBuffer
	addr, stop := startServerLog(t, `
pusher:
  path_prefix: /ws
  apps:
    - {id: one, key: key-one, secret: s1}
    - {id: two, key: key-two, secret: s2}
damon:
  listen: "`+tcpAddr+`"
  websocket_path: /damon-ws
dcl:
  path_prefixes: [/rooms, /mini-comms]
talo:
  api_prefix: /game-api
  socket_path: /game-socket
  socket_listen: "`+taloAddr+`"
`, slog.New(slog.NewTextHandler(&buf, nil)))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pusher": `endpoints="ws://` + addr + `/ws/app/key-one (app one), http://` + addr + `/ws/apps/one (HTTP API), ` +
			`ws://` + addr + `/ws/app/key-two (app two), http://` + addr + `/ws/apps/two (HTTP API)"`,
		"damon": `endpoints="tcp://` + tcpAddr + ` (raw TCP), ws://` + addr + `/damon-ws"`,
		"dcl":   `endpoints="ws://` + addr + `/rooms/{roomId} (ws-room), ws://` + addr + `/mini-comms/{roomId} (ws-room)"`,
		"talo": `endpoints="http://` + addr + `/game-api (api_url), ws://` + addr + `/game-socket (socket_url), ` +
			`ws://` + taloAddr + ` (socket_url, every path)"`,
	}
	got := map[string]string{}
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(line, `msg="protocol enabled"`) {
			continue
		}
		for p := range want {
			if strings.Contains(line, " protocol="+p+" ") {
				if _, dup := got[p]; dup {
					t.Errorf("two lines for %s", p)
				}
				got[p] = line[strings.Index(line, "endpoints="):]
			}
		}
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n got %s\nwant %s", p, got[p], w)
		}
	}
}

// A disabled protocol gets no line.
func TestStartupLogSkipsDisabledProtocols(t *testing.T) {
	var buf syncBuffer
	_, stop := startServerLog(t, "damon: {enabled: false}\ndcl: {enabled: false}\ntalo: {enabled: false}\n", slog.New(slog.NewTextHandler(&buf, nil)))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), `msg="protocol enabled"`); n != 1 || !strings.Contains(buf.String(), "protocol=pusher ") {
		t.Fatalf("%d protocol lines:\n%s", n, buf.String())
	}
}

// Two front-ends claiming the same route stop the server at New, with an
// error naming the setting, instead of a panic.
func TestRouteClashIsAStartupError(t *testing.T) {
	for yaml, setting := range map[string]string{
		"damon: {tcp: false, websocket_path: /rooms/status}\n": "dcl.path_prefixes",
		"damon: {tcp: false, websocket_path: /app/{key}x}\n":   "",                  // refused by config validation
		"damon: {tcp: false}\ndcl: {path_prefixes: [/apps]}\n": "dcl.path_prefixes", // Pusher's HTTP API
	} {
		cfg, err := config.Parse([]byte("listen: \"127.0.0.1:0\"\n" + yaml))
		if setting == "" {
			if err == nil {
				t.Errorf("config accepted %q", yaml)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		_, err = newServer(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.HasPrefix(err.Error(), setting+":") {
			t.Errorf("%q: New: %v", yaml, err)
		}
	}
}
