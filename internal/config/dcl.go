package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// DCL configures the Decentraland comms ws-room transport (RFC-5 / ADR-105):
// WebSocket rooms at {prefix}/{roomId}, the signed-challenge handshake, and
// the /status, /rooms/status and /health/live endpoints. See
// docs/decentraland.md.
type DCL struct {
	Enabled *bool `yaml:"enabled"`
	// PathPrefixes are the room routes: each prefix P serves P/{roomId}
	// and P/status. Default ["/rooms"] (the reference service's route);
	// add e.g. "/mini-comms" for the SDK preview's URLs.
	PathPrefixes []string `yaml:"path_prefixes"`
	// HandshakeTimeout bounds each handshake stage (identification, then
	// the signed challenge); default 1s, as the reference and its clients.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// MaxMessageBytes bounds one inbound frame; default 16384, the
	// reference's uWebSockets.js default. Larger frames close the
	// connection.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// IdleTimeout closes a joined peer from which nothing (pongs included)
	// arrived for this long; the server pings it every third of it.
	// Default 90s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// RoomCapacity is the number of joined peers a room takes; more are
	// kicked right after identification with the reference's reason.
	// Default 150.
	RoomCapacity int `yaml:"room_capacity"`
	// SessionScope: "server" (default, the reference): one live session
	// per address on the whole server, a new one kicks the old one
	// whatever its room. "room": one per address per room.
	SessionScope string `yaml:"session_scope"`
	// RequireOwnerMatch requires the auth chain's owner to be the address
	// the peer identified as. Default true; the reference never checked.
	RequireOwnerMatch *bool `yaml:"require_owner_match"`
	// EthRPCURL is an Ethereum JSON-RPC endpoint for contract-wallet
	// (EIP-1654) signatures. Empty: such chains are rejected and logged.
	EthRPCURL string `yaml:"eth_rpc_url"`
	// EthRPCTimeout bounds each RPC call; default 5s.
	EthRPCTimeout Duration `yaml:"eth_rpc_timeout"`
	// AccessTokenSecret, when set, requires ?access_token=<HS256 JWT signed
	// with it> on room URLs (the 2022 Archipelago scheme). Empty: the query
	// parameter is accepted and ignored, as by today's reference.
	AccessTokenSecret string `yaml:"access_token_secret"`
	// MaxConnections caps open ws-room connections; 0 is unlimited.
	MaxConnections int `yaml:"max_connections"`
	// SendQueueBytes bounds one peer's unsent data; past it the peer is
	// disconnected as a slow consumer. 0: limits.send_queue_bytes.
	SendQueueBytes int `yaml:"send_queue_bytes"`
	// CommitHash and EthNetwork are reported by /status and the
	// ws_room_service_build_info metric, as the reference's COMMIT_HASH and
	// ETH_NETWORK. Defaults "unknown" and "mainnet".
	CommitHash string `yaml:"commit_hash"`
	EthNetwork string `yaml:"eth_network"`
}

func (d *DCL) applyDefaults() {
	if d.Enabled == nil {
		d.Enabled = boolPtr(true)
	}
	if len(d.PathPrefixes) == 0 {
		d.PathPrefixes = []string{"/rooms"}
	}
	if d.HandshakeTimeout == 0 {
		d.HandshakeTimeout = Duration(time.Second)
	}
	if d.MaxMessageBytes == 0 {
		d.MaxMessageBytes = 16 << 10
	}
	if d.IdleTimeout == 0 {
		d.IdleTimeout = Duration(90 * time.Second)
	}
	if d.RoomCapacity == 0 {
		d.RoomCapacity = 150
	}
	if d.SessionScope == "" {
		d.SessionScope = "server"
	}
	if d.RequireOwnerMatch == nil {
		d.RequireOwnerMatch = boolPtr(true)
	}
	if d.EthRPCTimeout == 0 {
		d.EthRPCTimeout = Duration(5 * time.Second)
	}
	if d.CommitHash == "" {
		d.CommitHash = "unknown"
	}
	if d.EthNetwork == "" {
		d.EthNetwork = "mainnet"
	}
}

func (d *DCL) validate() []string {
	var errs []string
	seen := map[string]bool{}
	for _, p := range d.PathPrefixes {
		switch {
		case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "{}? \t"):
			errs = append(errs, fmt.Sprintf("dcl.path_prefixes %q: must start with /, not end with /, and hold no {, }, ? or spaces", p))
		case seen[p]:
			errs = append(errs, fmt.Sprintf("dcl.path_prefixes: %q listed twice", p))
		}
		seen[p] = true
	}
	if d.HandshakeTimeout < 0 || d.IdleTimeout < 0 || d.EthRPCTimeout < 0 {
		errs = append(errs, "dcl: timeouts must not be negative")
	}
	if d.MaxMessageBytes < 0 || d.RoomCapacity < 0 || d.MaxConnections < 0 || d.SendQueueBytes < 0 {
		errs = append(errs, "dcl: max_message_bytes, room_capacity, max_connections and send_queue_bytes must not be negative")
	}
	if d.MaxMessageBytes > 0 && d.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Sprintf("dcl.max_message_bytes %d: at least 1024 (an auth chain is about 600 bytes)", d.MaxMessageBytes))
	}
	switch d.SessionScope {
	case "", "server", "room":
	default:
		errs = append(errs, fmt.Sprintf("dcl.session_scope %q: want server or room", d.SessionScope))
	}
	if d.EthRPCURL != "" {
		u, err := url.Parse(d.EthRPCURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Sprintf("dcl.eth_rpc_url %q: want an absolute http(s) URL", d.EthRPCURL))
		}
	}
	return errs
}
