package dcl

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/timewheel"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

func validOptions() Options {
	m := metrics.New()
	return Options{Hub: hub.New(memory.New(), m), Wheel: timewheel.New(100*time.Millisecond, 64), Metrics: m, Logger: testLogger()}
}

// Every out-of-range option is refused with an error that names it and
// says what is allowed, by Validate and by Mount (before any route is
// registered); zero values are the defaults and valid.
func TestOptionsValidation(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(*Options)
		want   string // in the error
	}{
		{"no hub", func(o *Options) { o.Hub = nil }, "a hub is required"},
		{"no wheel", func(o *Options) { o.Wheel = nil }, "a timing wheel is required"},
		{"negative handshake timeout", func(o *Options) { o.HandshakeTimeout = -time.Second }, "handshake_timeout -1s: must not be negative"},
		{"handshake timeout under a tick", func(o *Options) { o.HandshakeTimeout = time.Millisecond }, "handshake_timeout 1ms: shorter than the timer resolution (100ms)"},
		{"negative idle timeout", func(o *Options) { o.IdleTimeout = -1 }, "idle_timeout -1ns: must not be negative"},
		{"idle timeout under 3 ticks", func(o *Options) { o.IdleTimeout = 200 * time.Millisecond }, "idle_timeout 200ms: must be at least 3 timer ticks"},
		{"negative verify timeout", func(o *Options) { o.VerifyTimeout = -time.Minute }, "verify_timeout -1m0s: must not be negative"},
		{"negative max message", func(o *Options) { o.MaxMessageBytes = -1 }, "max_message_bytes -1: at least 1024"},
		{"max message too small for a chain", func(o *Options) { o.MaxMessageBytes = 600 }, "max_message_bytes 600: at least 1024"},
		{"negative capacity", func(o *Options) { o.RoomCapacity = -5 }, "room_capacity -5: must not be negative"},
		{"negative max connections", func(o *Options) { o.MaxConnections = -1 }, "max_connections -1: must not be negative"},
		{"negative send queue", func(o *Options) { o.Transport = transport.Options{SendQueueBytes: -1} }, "send_queue_bytes -1: must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions()
			c.mutate(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "dcl: ") {
				t.Fatalf("Validate: %v, want an error with %q", err, c.want)
			}
			if o.Hub == nil || o.Wheel == nil {
				return // NewServer needs both to build the server at all
			}
			mux := http.NewServeMux()
			o.PathPrefixes = []string{"/rooms"}
			if err := NewServer(o).Mount(mux); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Mount: %v, want an error with %q", err, c.want)
			}
			if _, pattern := mux.Handler(&http.Request{Method: "GET", Host: "x", URL: mustURL(t, "/status")}); pattern != "" {
				t.Fatalf("a route (%s) was registered despite the error", pattern)
			}
		})
	}

	// Several problems at once: all are reported.
	o := validOptions()
	o.RoomCapacity, o.MaxConnections = -1, -1
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "room_capacity") || !strings.Contains(err.Error(), "max_connections") {
		t.Fatalf("want both problems, got %v", err)
	}

	// Zero is the default everywhere; ordinary values pass.
	for _, o := range []Options{validOptions(), func() Options {
		o := validOptions()
		o.HandshakeTimeout, o.IdleTimeout, o.VerifyTimeout = 100*time.Millisecond, 300*time.Millisecond, time.Second
		o.MaxMessageBytes, o.RoomCapacity, o.MaxConnections = MinMessageBytes, 1, 1
		return o
	}()} {
		if err := o.Validate(); err != nil {
			t.Fatalf("valid options refused: %v", err)
		}
	}
}

func TestPrefixValidation(t *testing.T) {
	for _, c := range []struct {
		prefixes []string
		want     string
	}{
		{nil, "path_prefixes is empty"},
		{[]string{"rooms"}, `"rooms": must start with /`},
		{[]string{"/"}, `"/": must start with / and not end with /`},
		{[]string{"/rooms/"}, `"/rooms/": must start with / and not end with /`},
		{[]string{"/r/{id}"}, "wildcards"},
		{[]string{"/r?x"}, "wildcards"},
		{[]string{"/my rooms"}, "spaces"},
		{[]string{"/metrics"}, "reserved"},
		{[]string{"/status"}, "reserved"},
		{[]string{"/rooms", "/rooms"}, `"/rooms" listed twice`},
	} {
		err := ValidatePrefixes(c.prefixes)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.prefixes, err, c.want)
			continue
		}
		o := validOptions()
		o.PathPrefixes = c.prefixes
		if err := NewServer(o).Mount(http.NewServeMux()); err == nil {
			t.Errorf("%q: Mount accepted it", c.prefixes)
		}
	}
	if err := ValidatePrefixes([]string{"/rooms", "/mini-comms", "/a/b"}); err != nil {
		t.Fatal(err)
	}
	// A clash with a route registered by someone else is an error, not a panic.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rooms/{x}", func(http.ResponseWriter, *http.Request) {})
	o := validOptions()
	o.PathPrefixes = []string{"/rooms"}
	if err := NewServer(o).Mount(mux); err == nil {
		t.Fatal("a clashing route was accepted")
	}
}

func mustURL(t *testing.T, path string) *url.URL {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
