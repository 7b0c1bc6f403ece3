package config

import (
	"strings"
	"testing"
)

func TestRateLimitDefaultsAndOff(t *testing.T) {
	c := mustParse(t, []byte("limits: {max_message_bytes: 1000}\n"))
	if r := c.Limits.ConnectionRate.Rate(); r.PerSecond != DefaultConnectionsPerSecond || r.Burst != DefaultConnectionBurst {
		t.Fatalf("connection rate %+v", r)
	}
	if r := c.Limits.APIRate.Rate(); r.PerSecond != DefaultAPIRequestsPerSecond || r.Burst != DefaultAPIBurst {
		t.Fatalf("api rate %+v", r)
	}
	// per_second: 0 is off, not the default; a missing burst is the default.
	c = mustParse(t, []byte("limits: {connection_rate: {per_second: 0}, api_rate: {per_second: 2.5}}\n"))
	if !c.Limits.ConnectionRate.Rate().Off() {
		t.Fatal("per_second: 0 must turn the connection limit off")
	}
	if r := c.Limits.APIRate.Rate(); r.PerSecond != 2.5 || r.Burst != DefaultAPIBurst {
		t.Fatalf("api rate %+v", r)
	}
}

func TestRateLimitValidation(t *testing.T) {
	for bad, want := range map[string]string{
		"limits: {connection_rate: {per_second: -1}}":                         "limits.connection_rate",
		"limits: {api_rate: {burst: -5}}":                                     "limits.api_rate",
		"limits: {connection_rate: {max_addresses: -1}}":                      "max_addresses",
		"limits: {trusted_proxies: [10.0.0.0/40]}":                            "limits.trusted_proxies",
		"limits: {trusted_proxies: [proxy.local]}":                            "proxy.local",
		"limits: {client_ip_header: X-Forwarded-For}":                         "trusted_proxies",
		"limits: {client_ip_header: 'X Forwarded', trusted_proxies: ['::1']}": "not an HTTP header name",
		"limits: {client_ip_header: forwarded, trusted_proxies: ['::1']}":     "X-Forwarded-For or X-Real-IP",
		"limits: {connection_rate: {per_sec: 5}}":                             "unknown key `per_sec`",
		"limits: {api_rate: {per_second: 5, max_addresses: 10}}":              "unknown key `max_addresses`",
		"limits: {trusted_proxy: [10.0.0.0/8], client_ip_header: X-Real-IP}":  "unknown key `trusted_proxy`",
	} {
		_, err := Parse([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", bad, err, want)
		}
	}
	c := mustParse(t, []byte("limits: {trusted_proxies: [10.0.0.0/8, '::1'], client_ip_header: X-Forwarded-For}\n"))
	src := c.Limits.ClientSource()
	if len(src.Trusted) != 2 || src.Header != "X-Forwarded-For" {
		t.Fatalf("%+v", src)
	}
}
