package transport

import (
	"net/http"
	"testing"
)

func TestIsUpgradeRequest(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  bool
	}{
		{[]string{"websocket"}, true},
		{[]string{"WebSocket"}, true},
		{[]string{"h2c, websocket"}, true},
		{[]string{" websocket\t"}, true},
		{[]string{"h2c", "websocket"}, true},
		{[]string{"h2c"}, false},
		{[]string{"websockets"}, false},
		{[]string{"web socket"}, false},
		{[]string{""}, false},
		{nil, false},
	} {
		h := http.Header{}
		for _, l := range tc.lines {
			h.Add("Upgrade", l)
		}
		if got := IsUpgradeRequest(h); got != tc.want {
			t.Errorf("Upgrade %q: %v, want %v", tc.lines, got, tc.want)
		}
	}
}
