package damon

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Throttling of failed IDENTIFYs.
//
// A failed IDENTIFY costs the client its connection, but nothing stops it
// from reconnecting: unthrottled, one client guessed 4,500-5,800 tokens/s
// over TCP and ~3,900/s over WebSocket. Each source address (an IPv4
// address, or the /64 of an IPv6 one, the smallest block a user usually
// gets) has a token bucket of failures: Burst at once, then one more every
// Interval.
//
// An IDENTIFY takes a token before its token is checked; a correct one
// gives it back, so identified services never wear their address's budget
// down. An IDENTIFY that finds the bucket empty is not checked at all (a
// correct token from a throttled address is refused too; otherwise the
// answer would still tell a guesser when it hit): the connection is closed
// with no DISCONNECT document (WebSocket: close code 1013, "try again
// later"). Only attempts that were checked get the reference's
// {"op":2,"data":"IDENTIFY_FAILED"}. A close rather than a delayed answer:
// holding a connection per throttled attempt would let the guesser tie up
// sockets instead of guesses.
//
// Memory is bounded by MaxAddresses buckets (~100 bytes each). When the
// table is full, buckets that have refilled (the same as having no entry)
// are swept, at most once per Interval; if it is still full, addresses
// without a bucket share one overflow bucket, so spreading guesses over
// many addresses cannot get past the limit (during such a flood, new
// addresses share that bucket's budget; tracked ones keep their own).

// Defaults of the throttle options.
const (
	DefaultIdentifyFailBurst    = 10
	DefaultIdentifyFailInterval = time.Second
	DefaultIdentifyAddresses    = 65536
)

type failBucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
	warned bool      // the throttling of this address was logged
}

// identifyLimiter is the per-address failure budget. Safe for concurrent
// use; every method is a map lookup and a little arithmetic under one lock.
type identifyLimiter struct {
	burst     float64
	interval  time.Duration
	max       int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[netip.Prefix]*failBucket
	overflow  failBucket
	lastSweep time.Time
}

// newIdentifyLimiter returns nil (no throttling) for a negative burst.
func newIdentifyLimiter(burst int, interval time.Duration, maxAddrs int, now func() time.Time) *identifyLimiter {
	if burst < 0 {
		return nil
	}
	return &identifyLimiter{
		burst: float64(burst), interval: interval, max: maxAddrs, now: now,
		buckets:  make(map[netip.Prefix]*failBucket),
		overflow: failBucket{tokens: float64(burst), at: now()},
	}
}

// sourceKey is the bucket key of a peer address: the IPv4 address, or the
// /64 of an IPv6 address. An address that is not IP (never, on TCP) maps
// to the zero prefix, one shared bucket.
func sourceKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if a != nil {
			if ap, err := netip.ParseAddrPort(a.String()); err == nil {
				ip = ap.Addr()
			}
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// refill brings b up to date at now.
func (l *identifyLimiter) refill(b *failBucket, now time.Time) {
	if b.tokens < l.burst && now.After(b.at) {
		b.tokens += float64(now.Sub(b.at)) / float64(l.interval)
		if b.tokens >= l.burst {
			b.tokens, b.warned = l.burst, false
		}
	}
	if now.After(b.at) {
		b.at = now
	}
}

// bucketLocked returns key's bucket, creating it when there is room.
func (l *identifyLimiter) bucketLocked(key netip.Prefix, now time.Time) *failBucket {
	if b := l.buckets[key]; b != nil {
		return b
	}
	if len(l.buckets) >= l.max && now.Sub(l.lastSweep) >= l.interval {
		l.lastSweep = now
		for k, b := range l.buckets {
			if l.refill(b, now); b.tokens >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) >= l.max {
		return &l.overflow
	}
	b := &failBucket{tokens: l.burst, at: now}
	l.buckets[key] = b
	return b
}

// take spends one failure from key's budget before an IDENTIFY is
// checked. ok false: the address is throttled, do not check. first
// reports that this is the address's first refusal since its bucket was
// last full (log it once).
func (l *identifyLimiter) take(key netip.Prefix) (ok, first bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketLocked(key, now)
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, false
	}
	first = !b.warned
	b.warned = true
	return false, first
}

// giveBack returns the token of an IDENTIFY that succeeded.
func (l *identifyLimiter) giveBack(key netip.Prefix) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &l.overflow // swept meanwhile or never tracked: no harm either way
	}
	l.refill(b, now)
	b.tokens = min(l.burst, b.tokens+1)
}

// tracked is the number of addresses with a bucket (tests).
func (l *identifyLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
