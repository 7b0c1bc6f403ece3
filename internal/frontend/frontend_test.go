package frontend

import (
	"net/http"
	"strings"
	"testing"
)

func TestEndpointURL(t *testing.T) {
	for _, tc := range []struct {
		e    Endpoint
		tls  bool
		want string
	}{
		{Endpoint{Kind: KindWebSocket, Path: "/app/k"}, false, "ws://h:1/app/k"},
		{Endpoint{Kind: KindWebSocket, Path: "/app/k"}, true, "wss://h:1/app/k"},
		{Endpoint{Kind: KindHTTP, Path: "/apps/a"}, true, "https://h:1/apps/a"},
		{Endpoint{Kind: KindTCP, Addr: "127.0.0.1:42069"}, true, "tcp://127.0.0.1:42069"},
	} {
		if got := tc.e.URL("h:1", tc.tls); got != tc.want {
			t.Errorf("%+v tls=%v: %s, want %s", tc.e, tc.tls, got, tc.want)
		}
	}
}

// A clashing route is an error naming the setting, not a panic.
func TestHandleConflict(t *testing.T) {
	mux := http.NewServeMux()
	h := http.NotFoundHandler()
	if err := Handle(mux, "x.path", "GET /a", h); err != nil {
		t.Fatal(err)
	}
	err := Handle(mux, "y.path", "GET /a", h)
	if err == nil || !strings.HasPrefix(err.Error(), `y.path: route "GET /a": `) {
		t.Fatalf("%v", err)
	}
}
