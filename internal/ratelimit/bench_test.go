package ratelimit

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// The per-call cost of the limiter. Repeat with:
//
//	go test -run XXX -bench . -benchtime 200000x -cpu 1,2 ./internal/ratelimit
//
// The numbers measured are in the package comment.

// One warm key: the steady state of an API limiter for one app.
func BenchmarkAllowWarmKey(b *testing.B) {
	k := NewKeyed[string](Rate{PerSecond: 1e12, Burst: 1 << 30}, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Allow("app-id")
		}
	})
}

// Every call a new address in a full table: a spoofing flood, each call
// evicting the least recently seen address.
func BenchmarkAllowEvictEveryCall(b *testing.B) {
	k := NewKeyed[netip.Addr](Rate{PerSecond: 50, Burst: 200}, Options{MaxKeys: 1024})
	b.ReportAllocs()
	var n uint32
	for b.Loop() {
		n++
		k.Allow(netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}))
	}
}

// The middleware's own work for an upgrade request from a trusted proxy:
// reading X-Forwarded-For, then the table.
func BenchmarkSourceAndAllow(b *testing.B) {
	c := NewConnections(ConnectionOptions{
		Rate:   Rate{PerSecond: 1e12, Burst: 1 << 30},
		Source: Source{Trusted: mustPrefixes(b, "10.0.0.0/8"), Header: "X-Forwarded-For"},
	})
	r := &http.Request{RemoteAddr: "10.0.0.1:3456", Header: http.Header{
		"X-Forwarded-For": {"198.51.100.7, 10.0.0.2"}, "Upgrade": {"websocket"}}}
	b.ReportAllocs()
	for b.Loop() {
		if transport.IsUpgradeRequest(r.Header) {
			c.Allow(c.source.Addr(r))
		}
	}
}
