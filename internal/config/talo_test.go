package config

import (
	"strings"
	"testing"
	"time"
)

// The issue names talo.http_rate_limits: false as the way to turn the
// HTTP limits off; everything else keeps its default.
func TestTaloDefaultsAndSwitches(t *testing.T) {
	c := mustParse(t, nil)
	if !On(c.Talo.Enabled, false) || c.Talo.StorePath != DefaultTaloStorePath || c.Talo.SocketPath != "/talo" ||
		!On(c.Talo.HTTPRateLimits, false) || c.Talo.PingInterval.D() != 30*time.Second || c.Talo.HTTPLimitAuth != 20 {
		t.Fatalf("defaults %+v", c.Talo)
	}
	c = mustParse(t, []byte("talo: {http_rate_limits: false, enabled: false}\n"))
	if On(c.Talo.HTTPRateLimits, true) || On(c.Talo.Enabled, true) || c.Talo.HTTPLimitDefault != 100 {
		t.Fatalf("switches %+v", c.Talo)
	}
}

func TestTaloValidationNamesTheKey(t *testing.T) {
	for yaml, want := range map[string]string{
		"talo: {socket_path: talo}":                                "talo.socket_path",
		"talo: {socket_path: /talo/}":                              "talo.socket_path",
		"talo: {socket_path: /}":                                   "talo.socket_path",
		"talo: {api_prefix: /api/}":                                "talo.api_prefix",
		"talo: {socket_listen: nonsense}":                          "talo.socket_listen",
		"talo: {max_connections: -1}":                              "talo.max_connections",
		"talo: {ticket_ttl: -1s}":                                  "talo.ticket_ttl",
		"talo: {max_message_bytes: 100}":                           "talo.max_message_bytes",
		"talo: {page_size: 5000}":                                  "talo.page_size",
		"talo: {allowed_origins: [game.example.com]}":              "talo.allowed_origins",
		"talo: {allowed_origins: [\"https://game.example.com/\"]}": "talo.allowed_origins",
		"talo: {postgres_dsn: \"mysql://u:hunter2@h/db\"}":         "talo.postgres_dsn",
		"talo: {http_rate_limit: false}":                           "http_rate_limit", // unknown key
	} {
		_, err := Parse([]byte(yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", yaml, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the DSN's password: %v", yaml, err)
		}
	}
	for _, yaml := range []string{
		"talo: {socket_listen: \":7070\", api_prefix: /talo, allowed_origins: [\"https://game.example.com\", \"*\"]}",
		"talo: {postgres_dsn: \"host=/tmp user=postgres\"}",
		"talo: {postgres_dsn: \"postgres://u:p@127.0.0.1:5432/db?sslmode=disable\"}",
	} {
		if _, err := Parse([]byte(yaml + "\n")); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}
