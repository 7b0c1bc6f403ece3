package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Source finds the client address a request counts against. By default
// that is the TCP peer. Behind a reverse proxy every peer is the proxy, so
// when the peer is one of Trusted and Header is set (e.g.
// X-Forwarded-For), the header is read instead: its comma-separated list
// is walked from the right (the hop nearest to us) past every trusted
// proxy, and the first address that is not one is the client. Without a
// trusted peer the header is ignored, because anyone can send it.
type Source struct {
	Trusted []netip.Prefix
	Header  string
}

// ParsePrefixes reads CIDRs ("10.0.0.0/8") or single addresses ("::1").
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// Addr is the client address of r; the zero Addr when even the peer
// address cannot be read.
func (s Source) Addr(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if s.Header == "" || !s.trusted(peer) {
		return peer
	}
	hops := strings.Join(r.Header.Values(s.Header), ",")
	client := peer
	for hops != "" {
		var hop string
		if i := strings.LastIndexByte(hops, ','); i >= 0 {
			hops, hop = hops[:i], hops[i+1:]
		} else {
			hops, hop = "", hops
		}
		a := parseHost(strings.TrimSpace(hop))
		if !a.IsValid() {
			// A hop we cannot read: the last proxy that we trust added
			// it; count the connection against that proxy's view.
			break
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}
	return client
}

func (s Source) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost reads "1.2.3.4", "1.2.3.4:5", "::1" or "[::1]:5".
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// addrOf is the IP of a net.Addr from a listener.
func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	return parseHost(a.String())
}

// bucketKey is the key an address is counted under: IPv4 addresses alone,
// IPv6 addresses by their /64, since one host usually holds a whole /64
// and could otherwise pick a fresh address per connection.
func bucketKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
