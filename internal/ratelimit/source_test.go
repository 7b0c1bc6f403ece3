package ratelimit

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSourceAddr(t *testing.T) {
	src := Source{Trusted: mustPrefixes(t, "10.0.0.0/8", "::1"), Header: "X-Forwarded-For"}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"untrusted peer: header ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"ipv6 trusted peer", "[::1]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client spoofs a left entry", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:5000", []string{"198.51.100.1, 10.9.9.9", "10.8.8.8"}, "198.51.100.1"},
		{"all trusted: leftmost", "10.1.2.3:5000", []string{"10.5.5.5, 10.6.6.6"}, "10.5.5.5"},
		{"garbage hop: stop at the proxy", "10.1.2.3:5000", []string{"198.51.100.1, nonsense"}, "10.1.2.3"},
		{"hop with port", "10.1.2.3:5000", []string{"198.51.100.1:4444"}, "198.51.100.1"},
		{"bracketed v6 hop", "10.1.2.3:5000", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"mapped v4 peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	} {
		r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := src.Addr(r); got.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// Without a header name, trusted peers are clients too.
	r := &http.Request{RemoteAddr: "10.1.2.3:1", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}
	if got := (Source{Trusted: src.Trusted}).Addr(r); got.String() != "10.1.2.3" {
		t.Errorf("no header configured: %s", got)
	}
}

func TestParsePrefixes(t *testing.T) {
	p := mustPrefixes(t, "10.1.2.3/8", "192.0.2.1", "2001:db8::/32")
	if p[0].String() != "10.0.0.0/8" || p[1].String() != "192.0.2.1/32" || p[2].String() != "2001:db8::/32" {
		t.Fatalf("%v", p)
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "10.0.0.0/33") {
		t.Fatalf("error %v", err)
	}
}

func TestIPv6CountsBySlash64(t *testing.T) {
	a := bucketKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := bucketKey(netip.MustParseAddr("2001:db8:1:2:bbbb::7"))
	c := bucketKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("%s %s %s", a, b, c)
	}
	if v4 := netip.MustParseAddr("192.0.2.1"); bucketKey(v4) != v4 {
		t.Fatal("v4 changed")
	}
}

// The forwarding header is attacker-controlled; reading it must never
// panic and must return the peer or an address written in it.
func FuzzSourceAddr(f *testing.F) {
	for _, s := range []string{"", ",", ",,,", "1.2.3.4", " 1.2.3.4 ,", "[::1", "::1]", "[]:80", "1.2.3.4:99999",
		"10.0.0.1, 10.0.0.2", "fe80::1%eth0", "::ffff:1.2.3.4", strings.Repeat("1.1.1.1,", 100), "\x00,\xff"} {
		f.Add(s)
	}
	src := Source{Trusted: mustPrefixes(f, "10.0.0.0/8", "::1", "1.1.1.1"), Header: "X-Forwarded-For"}
	f.Fuzz(func(t *testing.T, xff string) {
		r := &http.Request{RemoteAddr: "10.0.0.9:1", Header: http.Header{"X-Forwarded-For": {xff}}}
		got := src.Addr(r)
		if !got.IsValid() {
			t.Fatalf("invalid address from %q", xff)
		}
		if got == netip.MustParseAddr("10.0.0.9") {
			return
		}
		for hop := range strings.SplitSeq(xff, ",") {
			if parseHost(strings.TrimSpace(hop)) == got {
				return
			}
		}
		t.Fatalf("%s is neither the peer nor a hop of %q", got, xff)
	})
}
