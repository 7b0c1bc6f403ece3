package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/damon/refconfig"
)

// Damon configures the Damon master-socket protocol (raw TCP and WebSocket).
// Owned by the Damon front-end; see docs/damon.md.
type Damon struct {
	// Enabled turns the whole front-end on (default true, like every
	// protocol; without a token nobody can identify, as in the reference).
	Enabled *bool `yaml:"enabled"`
	// Listen is the raw TCP address (default 127.0.0.1:42069; the reference
	// listens on 0.0.0.0:42069).
	Listen string `yaml:"listen"`
	// TCP serves the raw TCP listener (default true).
	TCP *bool `yaml:"tcp"`
	// WebSocket serves the same protocol on WebSocketPath of the main
	// HTTP listener, one JSON document per text frame (default true).
	WebSocket     *bool  `yaml:"websocket"`
	WebSocketPath string `yaml:"websocket_path"` // default /damon
	// Token is the shared IDENTIFY secret. Empty: nobody can identify, as
	// in the reference.
	Token string `yaml:"token"`
	// PingInterval is the global heartbeat tick (default 30s). It must stay
	// under 60s: SocketClient's own hard-coded 60 s timer disconnects it
	// otherwise.
	PingInterval Duration `yaml:"ping_interval"`
	// MaxDocumentBytes bounds one inbound JSON document (default 32768,
	// the reference's max_bytes_message); larger: MESSAGE_TOO_BIG and close.
	MaxDocumentBytes int `yaml:"max_document_bytes"`
	// RequireIdentify drops EVENT/REPLY from connections that have not
	// identified and delivers nothing to them (default false, as the
	// reference).
	RequireIdentify bool `yaml:"require_identify"`
	// IdentifyFailBurst failed IDENTIFYs are allowed per source address at
	// once (default 10), then one more every IdentifyFailInterval (default
	// 1s); past that an IDENTIFY is closed unchecked. -1: no throttling.
	// IdentifyTrackedAddresses bounds the addresses remembered (65536).
	IdentifyFailBurst        int      `yaml:"identify_fail_burst"`
	IdentifyFailInterval     Duration `yaml:"identify_fail_interval"`
	IdentifyTrackedAddresses int      `yaml:"identify_tracked_addresses"`
	// ReferenceConfig and ReferenceAuth are paths to the reference server's
	// data/config.json (ping, socket.host/port, max_bytes_message) and
	// data/auth.json (token). Their values fill the keys above that are not
	// set; a key set to a different value in both places is an error. They
	// are read only when the front-end is enabled.
	ReferenceConfig string `yaml:"reference_config"`
	ReferenceAuth   string `yaml:"reference_auth"`

	refErrs []string // problems found while reading the reference files
}

const (
	damonDefaultListen   = "127.0.0.1:42069"
	damonDefaultPath     = "/damon"
	damonDefaultPing     = 30 * time.Second
	damonMaxPing         = 60 * time.Second // SocketClient's own timer (spec §7)
	damonMinPing         = 10 * time.Millisecond
	damonMaxDocumentSize = 16 << 20
)

// DamonPingLimit is the exclusive upper bound of damon.ping_interval.
const DamonPingLimit = damonMaxPing

func (d *Damon) applyDefaults() {
	d.refErrs = nil
	if d.Enabled == nil {
		d.Enabled = boolPtr(true)
	}
	if d.TCP == nil {
		d.TCP = boolPtr(true)
	}
	if d.WebSocket == nil {
		d.WebSocket = boolPtr(true)
	}
	if *d.Enabled {
		d.applyReference()
	}
	if d.Listen == "" {
		d.Listen = damonDefaultListen
	}
	if d.WebSocketPath == "" {
		d.WebSocketPath = damonDefaultPath
	}
	if d.PingInterval == 0 {
		d.PingInterval = Duration(damonDefaultPing)
	}
	if d.MaxDocumentBytes == 0 {
		d.MaxDocumentBytes = refconfig.DefaultMaxBytesMessage
	}
	if d.IdentifyFailBurst == 0 {
		d.IdentifyFailBurst = 10
	}
	if d.IdentifyFailInterval == 0 {
		d.IdentifyFailInterval = Duration(time.Second)
	}
	if d.IdentifyTrackedAddresses == 0 {
		d.IdentifyTrackedAddresses = 65536
	}
}

// applyReference fills the unset keys from the reference's own files
// (read and merged by package refconfig, which owns their format). Problems
// are kept for validate, which is where config errors are reported.
func (d *Damon) applyReference() {
	got, problems := refconfig.Merge(refconfig.Settings{
		Listen:           d.Listen,
		PingInterval:     d.PingInterval.D(),
		MaxDocumentBytes: d.MaxDocumentBytes,
		Token:            d.Token,
	}, d.ReferenceConfig, d.ReferenceAuth)
	d.Listen, d.PingInterval, d.MaxDocumentBytes, d.Token = got.Listen, Duration(got.PingInterval), got.MaxDocumentBytes, got.Token
	d.refErrs = problems
}

func (d *Damon) validate() []string {
	errs := append([]string(nil), d.refErrs...)
	if d.IdentifyFailBurst < -1 || d.IdentifyFailInterval < 0 || d.IdentifyTrackedAddresses < 0 {
		errs = append(errs, "damon: identify_fail_burst must be -1 (off) or positive, identify_fail_interval and identify_tracked_addresses not negative")
	}
	if p := d.PingInterval.D(); p < damonMinPing || p >= damonMaxPing {
		errs = append(errs, fmt.Sprintf("damon.ping_interval %s: must be at least %s and under %s "+
			"(SocketClient's own 60 s timer disconnects it when the server pings less often)", p, damonMinPing, damonMaxPing))
	}
	if n := d.MaxDocumentBytes; n < 1 || n > damonMaxDocumentSize {
		errs = append(errs, fmt.Sprintf("damon.max_document_bytes %d: must be from 1 to %d", n, damonMaxDocumentSize))
	}
	if On(d.TCP, true) {
		if _, port, err := net.SplitHostPort(d.Listen); err != nil {
			errs = append(errs, fmt.Sprintf("damon.listen %q: %v", d.Listen, err))
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Sprintf("damon.listen %q: bad port", d.Listen))
		}
	}
	if On(d.WebSocket, true) {
		p := d.WebSocketPath
		switch {
		case !strings.HasPrefix(p, "/") || p == "/":
			errs = append(errs, fmt.Sprintf("damon.websocket_path %q: must start with / and name a path", p))
		case strings.ContainsAny(p, "{} \t\r\n?#"):
			errs = append(errs, fmt.Sprintf("damon.websocket_path %q: wildcards, spaces, ? and # are not allowed", p))
		case p == "/metrics" || p == "/healthz" || p == "/readyz":
			errs = append(errs, fmt.Sprintf("damon.websocket_path %q: reserved by the server", p))
		}
	}
	if d.RequireIdentify && d.Token == "" && On(d.Enabled, false) {
		errs = append(errs, "damon.require_identify needs a token: with an empty token nobody can identify, so nothing could be sent")
	}
	return errs
}

// Warnings lists valid Damon settings worth a log line at startup.
func (d *Damon) Warnings() []string {
	var w []string
	if d.Token == "" {
		w = append(w, "damon.token is empty: no client can IDENTIFY (as in the reference); GROUP delivery needs identified clients")
	}
	if host, _, err := net.SplitHostPort(d.Listen); err == nil && On(d.TCP, true) && (host == "" || host == "0.0.0.0" || host == "::") {
		w = append(w, "damon.listen accepts connections on every interface, and unidentified clients may send GLOBAL events unless require_identify is set")
	}
	return w
}
