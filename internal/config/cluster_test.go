package config

import (
	"strings"
	"testing"
)

func TestClusterValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"cluster: {engine: etcd}", `cluster.engine "etcd": want memory, nats or redis`},
		{"cluster: {heartbeat: 1s, node_timeout: 2s}", "cluster.node_timeout 2s: at least 3 heartbeats"},
		{"cluster: {engine: nats, nats: {embedded: false}}", "cluster.nats.urls: an external NATS"},
		{"cluster: {engine: nats, nats: {listen: nohost}}", `cluster.nats.listen "nohost"`},
		{"cluster: {engine: redis, redis: {url: 'http://x'}}", `cluster.redis.url "http://x"`},
	} {
		_, err := Parse([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err := Parse([]byte("cluster: {engine: nats, nats: {routes: [nats-route://127.0.0.1:6222]}}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.NodeName == "" || c.Cluster.Heartbeat.D().String() != "1s" || c.Cluster.NodeTimeout.D().String() != "10s" || !On(c.Cluster.NATS.Embedded, false) {
		t.Fatalf("defaults not applied: %+v", c.Cluster)
	}
}
