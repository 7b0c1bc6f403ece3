//go:build linux

package transport

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// TestListenAcceptsWithoutKeepAlive: an accepted connection has no
// SO_KEEPALIVE (Go's default listener would set it, with a probe every
// 15 s on every idle connection).
func TestListenAcceptsWithoutKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen func() (net.Listener, error)
		want   int
	}{
		{"transport.Listen", func() (net.Listener, error) { return Listen(context.Background(), "127.0.0.1:0") }, 0},
		// The control: the check itself sees Go's default.
		{"net.Listen", func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tc.listen()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = ln.Close() }()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sc.Close() }()
			rc, err := sc.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			if err := rc.Control(func(fd uintptr) {
				got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			}); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			if got != tc.want {
				t.Fatalf("SO_KEEPALIVE = %d, want %d", got, tc.want)
			}
		})
	}
}
