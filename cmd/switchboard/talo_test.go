package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// taloConfig writes a configuration whose Talo store is a fresh SQLite
// file in a temporary directory.
func taloConfig(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "talo.db")
	return writeFile(t, "talo.yaml", "listen: \"127.0.0.1:0\"\ndamon: {enabled: false}\ndcl: {enabled: false}\n"+
		"shutdown: {timeout: 3s}\ntalo: {store_path: \""+db+"\"}\n")
}

var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$`)

// Each verb: its output on success, exit 1 with the reason on stderr for
// what the store refuses, exit 2 with the usage for a malformed command.
func TestTaloVerbs(t *testing.T) {
	cfg := taloConfig(t)
	bad := writeFile(t, "bad.yaml", "talo: {colour: blue}\n")
	type run struct {
		args   []string
		code   int
		stdout string // regexp
		stderr string // substring
	}
	check := func(tc run) string {
		t.Helper()
		code, stdout, stderr := runMain(t, tc.args...)
		if code != tc.code || !regexp.MustCompile(tc.stdout).MatchString(stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("switchboard %s: exit %d, want %d\nstdout: %q\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout, stderr)
		}
		return stdout
	}
	for _, tc := range []run{
		{[]string{"talo", "create-game", "-config", cfg, "Space Game"}, 0, `^1\n$`, ""},
		{[]string{"talo", "create-game", "Other Game", "-config", cfg}, 0, `^2\n$`, ""}, // flags after the name
		{[]string{"talo", "create-game", "-config", cfg, "Space Game"}, 1, `^$`, `a game named "Space Game" already exists`},
		{[]string{"talo", "create-game", "-config", cfg}, 2, `^$`, "want exactly one NAME"},
		{[]string{"talo", "create-game", "-config", cfg, "a", "b"}, 2, `^$`, "want exactly one NAME"},
		{[]string{"talo", "create-game", "-config", bad, "x"}, 1, `^$`, "colour"},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "Space Game"}, 0, jwtShape.String(), ""},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "2", "--scopes", "read:players,write:players"}, 0, jwtShape.String(), ""},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "Nope"}, 1, `^$`, `no game named "Nope"`},
		{[]string{"talo", "create-key", "-config", cfg}, 2, `^$`, "--game NAME is required"},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "Space Game", "--scopes", "read:everything"}, 2, `^$`, `unknown scope "read:everything"`},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "Space Game", "--scopes", ","}, 2, `^$`, "no scope"},
		{[]string{"talo", "create-key", "-config", cfg, "--game", "Space Game", "extra"}, 2, `^$`, `unexpected argument "extra"`},
		{[]string{"talo", "create-key", "-config", cfg, "--no-such-flag"}, 2, `^$`, "no-such-flag"},
		{[]string{"talo", "verification-key", "-config", cfg, "--game", "Space Game"}, 0, `^1:[0-9a-f]{16,}\n$`, ""},
		{[]string{"talo", "verification-key", "-config", cfg, "--game", "Space Game"}, 0, `^2:[0-9a-f]{16,}\n$`, ""},
		{[]string{"talo", "verification-key", "-config", cfg}, 2, `^$`, "--game NAME is required"},
		{[]string{"talo", "verification-key", "-config", cfg, "--game", "Nope"}, 1, `^$`, `no game named "Nope"`},
		{[]string{"talo", "revoke-key", "-config", cfg, "1"}, 0, `^$`, ""},
		{[]string{"talo", "revoke-key", "-config", cfg, "999"}, 1, `^$`, "no such key"},
		{[]string{"talo", "revoke-key", "-config", cfg, "not-a-key"}, 1, `^$`, "invalid access key"},
		{[]string{"talo", "revoke-key", "-config", cfg}, 2, `^$`, "want exactly one KEY"},
		{[]string{"talo"}, 2, `^$`, "usage"},
		{[]string{"talo", "frobnicate"}, 2, `^$`, `unknown command "frobnicate"`},
		{[]string{"talo", "help"}, 0, `create-key`, ""},
	} {
		check(tc)
	}
	// A key is revoked by its JWT as well as by its id.
	key := check(run{[]string{"talo", "create-key", "-config", cfg, "--game", "Space Game"}, 0, jwtShape.String(), ""})
	check(run{[]string{"talo", "revoke-key", "-config", cfg, strings.TrimSpace(key)}, 0, `^$`, ""})
}

// Without -config the default configuration is used: its store is
// ./switchboard-talo.db in the working directory.
func TestTaloDefaultConfigStore(t *testing.T) {
	dir := t.TempDir()
	if code, out, stderr := runMainIn(t, dir, "talo", "create-game", "Default Game"); code != 0 || out != "1\n" {
		t.Fatalf("exit %d %q %s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "switchboard-talo.db")); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runMainIn(t, dir, "talo", "create-key", "--game", "Default Game"); code != 0 || !jwtShape.MatchString(out) {
		t.Fatalf("exit %d %q %s", code, out, stderr)
	}
}

// The path for a newcomer: a game and a key from the CLI, then a
// server on the same configuration accepts the key, issues a socket
// ticket, and the socket greets with v1.connected; a key revoked from the
// CLI while the server runs is refused at once.
func TestTaloCLIToServer(t *testing.T) {
	cfgPath := taloConfig(t)
	if code, _, stderr := runMain(t, "talo", "create-game", "-config", cfgPath, "My Game"); code != 0 {
		t.Fatalf("create-game: %d %s", code, stderr)
	}
	code, out, stderr := runMain(t, "talo", "create-key", "-config", cfgPath, "--game", "My Game")
	if code != 0 {
		t.Fatalf("create-key: %d %s", code, stderr)
	}
	key := strings.TrimSpace(out)

	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + addr.String()
	call := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	// Requests wait for the server's start (untilStarted): no polling.
	if r := call("GET", "/v1/health-check"); r.StatusCode != http.StatusNoContent {
		t.Fatalf("health-check: %d", r.StatusCode)
	}
	r := call("POST", "/v1/socket-tickets")
	var v struct{ Ticket string }
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil || r.StatusCode != 200 || v.Ticket == "" {
		t.Fatalf("socket ticket: %d %v", r.StatusCode, err)
	}
	c, br, _, err := ws.Dial(context.Background(), "ws://"+addr.String()+"/talo/?ticket="+v.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	rd := io.Reader(c)
	if br != nil {
		rd = io.MultiReader(br, c)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := wsutil.ReadServerText(struct {
		io.Reader
		io.Writer
	}{rd, c}); err != nil || string(p) != `{"res":"v1.connected","data":{}}` {
		t.Fatalf("greeting %s %v", p, err)
	}

	if code, _, stderr := runMain(t, "talo", "revoke-key", "-config", cfgPath, key); code != 0 {
		t.Fatalf("revoke-key: %d %s", code, stderr)
	}
	if r := call("GET", "/v1/health-check"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("health-check with a revoked key: %d", r.StatusCode)
	}
}
