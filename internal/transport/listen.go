package transport

import (
	"context"
	"net"
)

// Listen opens a TCP listener for client connections with the kernel's
// keep-alive probes off. Go turns them on for every accepted connection
// (15 s idle, then a probe every 15 s): three setsockopt calls per accept,
// 4.5% of the server's CPU in a pprof of a 10,000-connection storm, and a
// probe and its answer per idle connection every 15 s. Measured on the
// whole storm the saving is within the noise (server CPU 1.43-1.77 s
// against 1.49-1.78 s, six runs each), and idle CPU stays 0.002 cores for
// 10,000 connections either way (the probes are the kernel's work), so
// this is no speed-up to count on; it is work and traffic nothing needs.
// Every protocol served here has its own keep-alive (Pusher and ws-room
// pings, Damon's PING op, Talo's heartbeat), which finds a dead peer.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}
