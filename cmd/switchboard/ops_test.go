package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// check-config prints every problem with its file, line and column.
func TestCheckConfigExplainsEachProblem(t *testing.T) {
	p := writeFile(t, "node.yaml", "listen: \":0\"\nclutser:\n  engine: nats\nshutdown: {timeout: ten}\n")
	code, stdout, stderr := runMain(t, "check-config", p)
	want := p + ": line 2, column 1: unknown key `clutser` in the top level: did you mean `cluster`?\n" +
		p + ": line 4, column 21: `shutdown.timeout`: expected a duration like 10s, 1m30s or 250ms, got \"ten\"\n"
	if code != 1 || stdout != "" || stderr != want {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant   %q", code, stdout, stderr, want)
	}
}

// A valid file passes, with the warnings the server would log at start.
func TestCheckConfigWarns(t *testing.T) {
	p := writeFile(t, "warn.yaml", "damon: {token: s3cret}\n")
	code, stdout, stderr := runMain(t, "check-config", p)
	want := p + ": ok\n" + p + ": warning: an app uses the published default secret: set a real one (pusher.apps[].secret or SWITCHBOARD_APP_SECRET)\n"
	if code != 0 || stdout != want || stderr != "" {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %q", code, stdout, want, stderr)
	}
	q := writeFile(t, "quiet.yaml", "pusher: {apps: [{id: a, key: k, secret: s}]}\ndamon: {enabled: false}\n")
	if code, stdout, _ := runMain(t, "check-config", q); code != 0 || stdout != q+": ok\n" {
		t.Fatalf("exit %d %q", code, stdout)
	}
}

// startServe runs `switchboard serve -config cfg` and returns the address
// its log says it listens on, and a function that stops it with SIGINT.
func startServe(t *testing.T, cfg string) (addr string, stop func()) {
	t.Helper()
	cmd := command(t, "serve", "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), "msg=\"switchboard listening\" addr="); ok {
			addr, _, _ = strings.Cut(a, " ")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	if addr == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the server never said where it listens")
	}
	return addr, func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// healthcheck exits 0 while the server it finds through the configuration
// (here its listen address from the environment, as a container sets PORT
// or SWITCHBOARD_LISTEN) answers, and 1 once it is gone.
func TestHealthcheckFindsTheServer(t *testing.T) {
	cfg := writeFile(t, "hc.yaml", "listen: \"127.0.0.1:0\"\ndamon: {enabled: false}\ntalo: {enabled: false}\n")
	addr, stop := startServe(t, cfg)
	check := func(args ...string) (int, string, string) {
		cmd := command(t, append([]string{"healthcheck", "-config", cfg}, args...)...)
		cmd.Env = append(cmd.Env, "SWITCHBOARD_LISTEN="+addr)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errb.String() + errString(err)
	}
	if code, out, errs := check(); code != 0 || out != "http://"+addr+"/healthz: ok\n" {
		t.Fatalf("alive: exit %d %q %q", code, out, errs)
	}
	if code, out, errs := check("-ready"); code != 0 || out != "http://"+addr+"/readyz: ok\n" {
		t.Fatalf("ready: exit %d %q %q", code, out, errs)
	}
	stop()
	if code, out, errs := check(); code != 1 || out != "" || !strings.Contains(errs, "connection refused") {
		t.Fatalf("stopped: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := check("extra"); code != 2 || !strings.Contains(errs, "usage") {
		t.Fatalf("bad usage: exit %d %q", code, errs)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHealthURL(t *testing.T) {
	for listen, want := range map[string]string{
		":6001": "http://127.0.0.1:6001/healthz", "0.0.0.0:7000": "http://127.0.0.1:7000/healthz",
		"[::]:7000": "http://127.0.0.1:7000/healthz", "10.1.2.3:6001": "http://10.1.2.3:6001/healthz",
		"[::1]:6001": "http://[::1]:6001/healthz",
	} {
		got, err := healthURL(&config.Config{Listen: listen}, "/healthz")
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", listen, got, err, want)
		}
	}
	if got, _ := healthURL(&config.Config{Listen: ":443", TLS: config.TLS{Cert: "c", Key: "k"}}, "/readyz"); got != "https://127.0.0.1:443/readyz" {
		t.Errorf("tls: %q", got)
	}
}

// The welcome block is printed only without a configuration file, and
// only with text logs.
func TestShowWelcome(t *testing.T) {
	text, json := &config.Config{Log: config.Log{Format: "text"}}, &config.Config{Log: config.Log{Format: "json"}}
	if !showWelcome("", text) || showWelcome("switchboard.yaml", text) || showWelcome("", json) {
		t.Fatal("wrong decision")
	}
}

// The welcome block shows a real server's endpoints as a newcomer uses
// them; a front-end it does not know by name (the console) is listed as
// its endpoints say.
func TestWelcomeBlock(t *testing.T) {
	cfg, err := config.Parse([]byte(`
listen: "127.0.0.1:0"
damon: {listen: "127.0.0.1:0"}
talo: {store_path: "` + filepath.Join(t.TempDir(), "talo.db") + `"}
`))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-srv.Started()
	base, tls := srv.ClientBase()
	protocols := srv.Protocols()
	damonAddr := ""
	for _, p := range protocols {
		for _, e := range p.Endpoints {
			if e.Kind == frontend.KindTCP {
				damonAddr = e.Addr
			}
		}
	}
	protocols = append(protocols, server.Protocol{Name: "console", Endpoints: []frontend.Endpoint{{Kind: frontend.KindHTTP, Path: "/console", Note: "operator console"}}})
	var b strings.Builder
	writeWelcome(&b, base, tls, protocols)
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		t.Fatal(err)
	}
	want := `
Switchboard is running on the built-in defaults (no configuration file).

Pusher Channels, app app-id (key app-key):
  pusher-js:   new Pusher('app-key', {wsHost: 'localhost', wsPort: PORT, wssPort: PORT, forceTLS: false, enabledTransports: ['ws', 'wss'], cluster: ''})
  server SDKs: appId 'app-id', key 'app-key', host 'localhost', port PORT, useTLS false, and the app's secret

Damon master socket:
  TCP:       DAMON
  WebSocket: ws://localhost:PORT/damon

Decentraland ws-room:
  ws://localhost:PORT/rooms/my-room

Talo (Godot plugin, Unity package) settings:
  api_url:    http://localhost:PORT
  socket_url: ws://localhost:PORT/talo
  access key: switchboard talo create-game "My Game" && switchboard talo create-key --game "My Game"

console:
  http://localhost:PORT/console (operator console)

Health: http://localhost:PORT/healthz  http://localhost:PORT/readyz  metrics: http://localhost:PORT/metrics
Your own settings: switchboard default-config > switchboard.yaml, edit, then switchboard -config switchboard.yaml

`
	want = strings.NewReplacer("localhost", host, "PORT", port, "DAMON", damonAddr).Replace(want)
	if damonAddr == "" || b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "app-secret") {
		t.Fatal("the welcome block shows a secret")
	}
}

// With a path prefix and TLS the snippet says so (wsPath, forceTLS), and
// further apps are counted, not listed.
func TestWelcomePusherOptions(t *testing.T) {
	var b strings.Builder
	writeWelcome(&b, "example.com:443", true, []server.Protocol{{Name: "pusher", Endpoints: []frontend.Endpoint{
		{Kind: frontend.KindWebSocket, Path: "/ws/app/k1", Note: "app one"},
		{Kind: frontend.KindHTTP, Path: "/ws/apps/one", Note: "HTTP API"},
		{Kind: frontend.KindWebSocket, Path: "/ws/app/k2", Note: "app two"},
	}}})
	for _, want := range []string{
		"new Pusher('k1', {wsHost: 'example.com', wsPort: 443, wssPort: 443, forceTLS: true, enabledTransports: ['ws', 'wss'], cluster: '', wsPath: '/ws'})",
		"(1 more apps in the configuration)",
		"Health: https://example.com:443/healthz",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}
