package talo_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
)

// SocketListen serves the socket on a listener of its own at every path
// (the reference's shape), announces it in Endpoints, and stops accepting
// at Drain while its sockets get 1001.
func TestSocketListen(t *testing.T) {
	e := newEnv(t, func(o *talo.Options) { o.SocketListen = "127.0.0.1:0" })
	eps := e.srv.Endpoints()
	if len(eps) != 3 || eps[0] != (frontend.Endpoint{Kind: "http", Path: "", Note: "api_url"}) ||
		eps[1] != (frontend.Endpoint{Kind: "ws", Path: "/talo", Note: "socket_url"}) ||
		eps[2].Kind != "ws" || !strings.HasPrefix(eps[2].Addr, "127.0.0.1:") || eps[2].Note != "socket_url, every path" {
		t.Fatalf("endpoints %+v", eps)
	}
	own := *e
	own.wsURL = "ws://" + eps[2].Addr
	key := e.key("read:players")
	var conns []*client
	for _, path := range []string{"", "/", "/socket", "/any/deep/path/"} {
		c := own.dial(path + "?ticket=" + e.ticket(key))
		c.expect(`{"res":"v1.connected","data":{}}`)
		conns = append(conns, c)
	}
	// Not an upgrade: the socket's own answer, not a router's 404.
	resp, err := http.Get("http://" + eps[2].Addr + "/v1/health-check")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Drain(ctx)
	for i, c := range conns {
		if code, _ := c.expectClosed(); code != 1001 {
			t.Errorf("socket %d: close %d", i, code)
		}
	}
	if c, err := net.Dial("tcp", eps[2].Addr); err == nil {
		_ = c.Close()
		t.Fatal("the socket listener still accepts after Drain")
	}
}

// A route another protocol holds is an error naming the Talo setting.
func TestMountClashNamesTheSetting(t *testing.T) {
	for opts, setting := range map[[2]string]string{
		{"/rooms", ""}:  "talo.socket_path",
		{"/talo", "/x"}: "talo.api_prefix",
	} {
		e := newEnv(t, func(o *talo.Options) { o.SocketPath, o.APIPrefix = opts[0], opts[1] })
		mux := http.NewServeMux()
		mux.Handle("/rooms/", http.NotFoundHandler())
		mux.Handle("/x/v1/", http.NotFoundHandler())
		if err := e.srv.Mount(mux); err == nil || !strings.HasPrefix(err.Error(), setting+":") {
			t.Errorf("%v: Mount: %v", opts, err)
		}
	}
}
