package natsengine

import (
	"fmt"
	"os"
	"testing"
)

func TestPeerRoutesDropSelf(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		listen string
		routes []string
		want   string
	}{
		{"127.0.0.1:7001", []string{"127.0.0.1:7001", "127.0.0.1:7002", "nats://127.0.0.1:7003"}, "[nats://127.0.0.1:7002 nats://127.0.0.1:7003]"},
		{"0.0.0.0:6222", []string{host + ":6222", "10.255.255.1:6222"}, "[nats://10.255.255.1:6222]"},
		{"0.0.0.0:6222", []string{"127.0.0.1:6222", "127.0.0.1:6223"}, "[nats://127.0.0.1:6223]"},
	} {
		var got []string
		for _, u := range peerRoutes(c.listen, c.routes) {
			got = append(got, u.String())
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("peerRoutes(%s, %v) = %v, want %s", c.listen, c.routes, got, c.want)
		}
	}
}
