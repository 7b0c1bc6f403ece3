package loadgen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Target says which server to drive and with which app credentials.
type Target struct {
	Host   string // host name or IP; loopback unless AllowRemote
	Port   int
	AppID  string
	Key    string
	Secret string
	// AllowRemote must be set for a Host that is not loopback, so that a
	// typo or a stray default can never send load to another machine.
	AllowRemote bool
}

// DefaultTarget is the protocol's conventional local app (soketi's default,
// and Switchboard's).
func DefaultTarget() Target {
	return Target{Host: "127.0.0.1", Port: 6001, AppID: "app-id", Key: "app-key", Secret: "app-secret"}
}

// Addr is host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// WSURL is the WebSocket endpoint for the app key, with the query pusher-js
// sends so servers that look at it treat us as a protocol-7 client.
func (t Target) WSURL() string {
	return "ws://" + t.Addr() + "/app/" + t.Key + "?protocol=7&client=switchboard-bench&version=1.0"
}

// HTTPBase is the REST API base URL (no trailing slash).
func (t Target) HTTPBase() string { return "http://" + t.Addr() }

// Validate checks the credentials and enforces the loopback rule.
func (t Target) Validate() error {
	if t.Host == "" || t.Port <= 0 || t.Port > 65535 {
		return fmt.Errorf("target: bad host/port %q:%d", t.Host, t.Port)
	}
	if t.AppID == "" || t.Key == "" || t.Secret == "" {
		return errors.New("target: app id, key and secret are required")
	}
	if !t.AllowRemote && !IsLoopbackHost(t.Host) {
		return fmt.Errorf("target %q is not a loopback address; pass --allow-remote to name it explicitly", t.Host)
	}
	return nil
}

// IsLoopbackHost reports whether host is "localhost" or a loopback IP
// literal. Names other than localhost are not resolved: resolving would let
// DNS decide where the load goes.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

// Common holds the knobs every scenario shares.
type Common struct {
	Target Target
	// Conns is the number of WebSocket connections the scenario holds.
	Conns int
	// ConnectConcurrency bounds dials in flight; servers (soketi listens with
	// a backlog of 512) drop SYNs when a burst overflows the accept queue.
	ConnectConcurrency int
	// ConnectRate caps new connections per second (0 = only concurrency).
	ConnectRate float64
	// ConnectTimeout bounds one dial + handshake + first message.
	ConnectTimeout time.Duration
	// SourceAddrs are local addresses to spread connections over (empty =
	// let the kernel choose).
	SourceAddrs []netip.Addr
	// ServerPID, when > 0, is sampled through /proc for CPU and RSS.
	ServerPID int
	// MaxRunTime bounds the whole scenario, whatever its other settings.
	MaxRunTime time.Duration
	// Settle is how long to wait after connecting before measuring, so the
	// server's allocator and GC reach a steady state.
	Settle time.Duration
	// Drain is the longest to wait, after the last publish of a step, for
	// outstanding deliveries before counting the rest as missing.
	Drain time.Duration
	// Progress, when true, prints a one-line status to stderr every second.
	Progress bool
	// PayloadBytes pads each published event's data to about this size.
	PayloadBytes int
	// BackgroundSample is how long to measure other CPU use on the machine
	// before the run (0 = skip).
	BackgroundSample time.Duration
}

// DefaultCommon returns the defaults used by the command line.
func DefaultCommon() Common {
	return Common{
		Target:             DefaultTarget(),
		Conns:              1000,
		ConnectConcurrency: 64,
		ConnectTimeout:     10 * time.Second,
		MaxRunTime:         30 * time.Minute,
		Settle:             2 * time.Second,
		Drain:              5 * time.Second,
		BackgroundSample:   time.Second,
	}
}

func (c Common) validate() error {
	if err := c.Target.Validate(); err != nil {
		return err
	}
	if c.Conns < 0 {
		return errors.New("conns must be >= 0")
	}
	if c.ConnectConcurrency <= 0 {
		return errors.New("connect concurrency must be > 0")
	}
	if c.ConnectTimeout <= 0 || c.MaxRunTime <= 0 {
		return errors.New("connect timeout and max run time must be > 0")
	}
	if c.Drain < 0 || c.Settle < 0 {
		return errors.New("drain and settle must be >= 0")
	}
	return nil
}

// DefaultSourceAddrs returns n loopback source addresses 127.0.0.2 … for a
// loopback IPv4 target, and none otherwise (IPv6 has a single loopback
// address, and a remote target must be reached from a routable address).
func DefaultSourceAddrs(t Target, n int) []netip.Addr {
	if n <= 0 || n > 250 {
		return nil
	}
	host := t.Host
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return nil
	}
	out := make([]netip.Addr, 0, n)
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}))
	}
	return out
}

// ParseSourceAddrs parses a comma-separated list of IP addresses.
func ParseSourceAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("source address %q: %w", f, err)
		}
		out = append(out, a)
	}
	return out, nil
}
