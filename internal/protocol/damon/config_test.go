package damon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// The damon section of internal/config (owned by this front-end), tested
// here through the public config API.

func TestConfigDefaults(t *testing.T) {
	c, err := config.Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Damon
	if !config.On(d.Enabled, false) {
		t.Fatal("damon disabled by default; every protocol is on in the default server")
	}
	if d.Listen != "127.0.0.1:42069" || !config.On(d.TCP, false) || !config.On(d.WebSocket, false) ||
		d.WebSocketPath != "/damon" || d.PingInterval.D() != 30*time.Second || d.MaxDocumentBytes != 32768 ||
		d.Token != "" || d.RequireIdentify {
		t.Fatalf("defaults %+v", d)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, bad := range []string{
		"damon: {ping_interval: 60s}",
		"damon: {ping_interval: 2m}",
		"damon: {ping_interval: 5ms}",
		"damon: {ping_interval: -1s}",
		"damon: {max_document_bytes: -1}",
		"damon: {max_document_bytes: 100000000}",
		"damon: {listen: nonsense}",
		"damon: {listen: '127.0.0.1:99999'}",
		"damon: {websocket_path: damon}",
		"damon: {websocket_path: /}",
		"damon: {websocket_path: '/d/{x}'}",
		"damon: {websocket_path: /metrics}",
		"damon: {enabled: true, require_identify: true}",
		"damon: {colour: blue}",
	} {
		if _, err := config.Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		} else if !strings.Contains(err.Error(), "damon") && !strings.Contains(err.Error(), "colour") {
			t.Errorf("%q: error does not name the setting: %v", bad, err)
		}
	}
	for _, good := range []string{
		"damon: {ping_interval: 59s}",
		"damon: {ping_interval: 300ms, max_document_bytes: 1}",
		"damon: {listen: ':42069'}",
		"damon: {listen: '[::1]:0'}",
		"damon: {tcp: false, listen: nonsense}", // not used
		"damon: {enabled: true, token: t, require_identify: true}",
	} {
		if _, err := config.Parse([]byte(good)); err != nil {
			t.Errorf("refused %q: %v", good, err)
		}
	}
	_, err := config.Parse([]byte("damon: {ping_interval: 60s}"))
	if err == nil || !strings.Contains(err.Error(), "SocketClient") {
		t.Fatalf("the 60 s error should say why: %v", err)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigReferenceFiles(t *testing.T) {
	dir := t.TempDir()
	// The reference's committed data/config.json, byte for byte (3e4 included).
	cfgJSON := writeFile(t, dir, "config.json", `{ "ping": 3e4, "socket": { "host": "0.0.0.0", "port": 42069 }, "max_bytes_message": 32768 }`)
	authJSON := writeFile(t, dir, "auth.json", `{ "redis": { "host": "redis", "port": 6379, "password": "pw" }, "token": "s3cret" }`)
	c, err := config.Parse([]byte("damon: {enabled: true, reference_config: " + cfgJSON + ", reference_auth: " + authJSON + "}"))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Damon
	if d.Listen != "0.0.0.0:42069" || d.PingInterval.D() != 30*time.Second || d.MaxDocumentBytes != 32768 || d.Token != "s3cret" {
		t.Fatalf("reference values not applied: %+v", d)
	}
	if w := strings.Join(d.Warnings(), "\n"); !strings.Contains(w, "every interface") {
		t.Fatalf("no warning for 0.0.0.0: %q", w)
	}

	// Same values in YAML: fine. Different: an error naming both places.
	if _, err := config.Parse([]byte("damon: {enabled: true, listen: '0.0.0.0:42069', token: s3cret, reference_config: " + cfgJSON + ", reference_auth: " + authJSON + "}")); err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse([]byte("damon: {enabled: true, ping_interval: 10s, token: other, reference_config: " + cfgJSON + ", reference_auth: " + authJSON + "}"))
	if err == nil || !strings.Contains(err.Error(), "ping_interval") || !strings.Contains(err.Error(), "token differs") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("conflict error %v", err)
	}

	// A ping the SocketClient cannot live with is refused from config.json too.
	slow := writeFile(t, dir, "slow.json", `{"ping": 6e4, "socket": {"port": 1}}`)
	if _, err := config.Parse([]byte("damon: {enabled: true, reference_config: " + slow + "}")); err == nil || !strings.Contains(err.Error(), "ping_interval") {
		t.Fatalf("6e4 accepted: %v", err)
	}
	// An empty host means every interface; a missing max_bytes_message the old default.
	minimal := writeFile(t, dir, "min.json", `{"ping": 1000, "socket": {"port": 4000}}`)
	c, err = config.Parse([]byte("damon: {enabled: true, reference_config: " + minimal + "}"))
	if err != nil || c.Damon.Listen != ":4000" || c.Damon.MaxDocumentBytes != 32768 || c.Damon.PingInterval.D() != time.Second {
		t.Fatalf("%v %+v", err, c.Damon)
	}
	// Broken or missing files are config errors.
	for _, body := range []string{`{"ping": "3e4", "socket": {"port": 1}}`, `{"ping": 3e4}`, `[]`} {
		p := writeFile(t, dir, "bad.json", body)
		if _, err := config.Parse([]byte("damon: {enabled: true, reference_config: " + p + "}")); err == nil || !strings.Contains(err.Error(), "reference_config") {
			t.Errorf("%s: %v", body, err)
		}
	}
	if _, err := config.Parse([]byte("damon: {enabled: true, reference_auth: /nonexistent/auth.json}")); err == nil {
		t.Error("missing auth.json accepted")
	}
	// Not read at all while the front-end is disabled.
	if _, err := config.Parse([]byte("damon: {enabled: false, reference_auth: /nonexistent/auth.json}")); err != nil {
		t.Errorf("disabled section read its files: %v", err)
	}
}
