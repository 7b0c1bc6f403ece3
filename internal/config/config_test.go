package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEmbeddedDefault(t *testing.T) {
	c, err := Load("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":6001" || len(c.Pusher.Apps) != 1 {
		t.Fatalf("listen %q apps %d", c.Listen, len(c.Pusher.Apps))
	}
	a := c.Pusher.Apps[0]
	if a.ID != "app-id" || a.Key != "app-key" || a.Secret != "app-secret" || !On(a.ClientEvents, false) {
		t.Fatalf("default app %+v", a)
	}
	if !c.UsesDefaultSecret() {
		t.Fatal("default secret not detected")
	}
	if c.Pusher.ActivityTimeout.D() != 120*time.Second || a.Limits.ClientEventsPerSecond != 10 {
		t.Fatal("defaults not applied")
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	_, err := Parse([]byte("listen: \":1\"\npusher:\n  apps:\n    - id: a\n      key: b\n      secret: c\n      colour: blue\n"))
	if err == nil || !strings.Contains(err.Error(), "colour") || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("error %v", err)
	}
}

func TestZeroMeansDefaultAndEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("pusher:\n  apps:\n    - {id: x, key: k, secret: s, limits: {max_event_bytes: 0}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PORT": "7000", "SWITCHBOARD_APP_SECRET": "s2", "SWITCHBOARD_LOG_LEVEL": "debug"}
	c, err := Load(p, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":7000" || c.Pusher.Apps[0].Secret != "s2" || c.Log.Level != "debug" {
		t.Fatalf("env not applied: %+v", c)
	}
	if c.Memory.GCPercent != DefaultGCPercent {
		t.Fatalf("memory.gc_percent left out: %d, want %d", c.Memory.GCPercent, DefaultGCPercent)
	}
	if c.Pusher.Apps[0].Limits.MaxEventBytes != 10240 {
		t.Fatalf("zero did not mean default: %d", c.Pusher.Apps[0].Limits.MaxEventBytes)
	}
}

func TestValidation(t *testing.T) {
	for _, bad := range []string{
		"log: {level: loud}",
		"tls: {cert: a.pem}",
		"pusher: {apps: [{id: a, key: k}]}",
		"pusher: {apps: [{id: a, key: k, secret: s}, {id: a, key: k2, secret: s}]}",
		"pusher: {apps: [{id: a, key: k, secret: s, webhooks: [{url: ftp://x}]}]}",
		"pusher: {apps: [{id: a, key: k, secret: s, webhooks: [{url: 'http://x', event_types: [nope]}]}]}",
		"limits: {write_timeout: soon}",
		"memory: {gc_percent: 5}",
		"memory: {gc_percent: 5000}",
		"memory: {gc_percent: -1}",
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestDurationForms(t *testing.T) {
	c, err := Parse([]byte("limits: {write_timeout: 2m, handshake_timeout: 5}"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.WriteTimeout.D() != 2*time.Minute || c.Limits.HandshakeTimeout.D() != 5*time.Second {
		t.Fatalf("%v %v", c.Limits.WriteTimeout.D(), c.Limits.HandshakeTimeout.D())
	}
}
