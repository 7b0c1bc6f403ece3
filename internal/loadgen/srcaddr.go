package loadgen

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// sourceDialer dials TCP connections from a rotating set of local
// addresses. Without it every connection to 127.0.0.1:6001 would come from
// 127.0.0.1 and share its ~28k ephemeral ports (32768–60999), which caps
// both the number of open connections and churn (TIME_WAIT holds a port for
// 60 s after each close).
type sourceDialer struct {
	addrs   []netip.Addr
	next    atomic.Uint64
	timeout time.Duration
}

func newSourceDialer(addrs []netip.Addr, timeout time.Duration) *sourceDialer {
	return &sourceDialer{addrs: addrs, timeout: timeout}
}

// localAddr returns the next source address, or nil to let the kernel pick.
func (d *sourceDialer) localAddr() *net.TCPAddr {
	if len(d.addrs) == 0 {
		return nil
	}
	i := d.next.Add(1) - 1
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.addrs[i%uint64(len(d.addrs))], 0))
}

// DialContext matches the signature ws.Dialer.NetDial and http.Transport
// expect.
func (d *sourceDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: -1}
	if la := d.localAddr(); la != nil {
		nd.LocalAddr = la
	}
	return nd.DialContext(ctx, network, addr)
}
