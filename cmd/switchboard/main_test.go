package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// The tests run the real program: the test binary re-executes itself with
// this variable set, and then runs main with the given arguments, so exit
// codes and signals are the ones a user sees.
const runMainEnv = "SWITCHBOARD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command runs the program in a temporary working directory, where the
// default configuration's files (Talo's SQLite store) land.
func command(t testing.TB, args ...string) *exec.Cmd {
	return commandIn(t.TempDir(), args...)
}

func commandIn(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "SWITCHBOARD_CONFIG=")
	cmd.Dir = dir
	return cmd
}

// run runs the program to its end and returns its exit code and output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runMainIn(t, t.TempDir(), args...)
}

// runMainIn is runMain in the working directory dir.
func runMainIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := commandIn(dir, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	good := writeFile(t, "good.yaml", "listen: \"127.0.0.1:0\"\n")
	bad := writeFile(t, "bad.yaml", "listen: \"127.0.0.1:0\"\ncolour: blue\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busy.Close() }()
	busyDamon := writeFile(t, "busy.yaml", "listen: \"127.0.0.1:0\"\ndamon: {listen: \""+busy.Addr().String()+"\"}\n")
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"check-config", good}, 0, good + ": ok", ""},
		{[]string{"check-config", bad}, 1, "", "colour"},
		{[]string{"check-config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "", "missing.yaml"},
		{[]string{"check-config"}, 2, "", "usage"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"serve", "-config", bad}, 1, "", "colour"},
		{[]string{"-config", bad}, 1, "", "colour"},
		{[]string{"serve", "-no-such-flag"}, 2, "", "no-such-flag"},
		{[]string{"serve", "-config", busyDamon}, 1, "", "damon"},
		{[]string{"version"}, 0, "switchboard ", ""},
		{[]string{"help"}, 0, "usage", ""},
	} {
		code, stdout, stderr := runMain(t, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("switchboard %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, stdout, stderr)
		}
	}
}

// default-config prints a configuration that check-config accepts.
func TestDefaultConfigChecks(t *testing.T) {
	code, out, _ := runMain(t, "default-config")
	if code != 0 || !strings.Contains(out, "listen:") {
		t.Fatalf("default-config: %d %s", code, out)
	}
	p := writeFile(t, "default.yaml", out)
	if code, _, stderr := runMain(t, "check-config", p); code != 0 {
		t.Fatalf("check-config of the default: %d %s", code, stderr)
	}
}

// SIGTERM shuts down gracefully with exit code 0, and webhooks queued
// during the shutdown itself (the channel_vacated of the connections the
// drain closes) reach a real receiver before the process exits.
func TestSIGTERMFlushesWebhooks(t *testing.T) {
	var mu sync.Mutex
	var got []string // event name:channel, in arrival order
	// The workers deliver concurrently: channel_occupied must have arrived
	// before the shutdown queues channel_vacated for the order to be fixed.
	occupied := make(chan struct{}, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Pusher-Key") != "app-key" || !pushersign.Equal(r.Header.Get("X-Pusher-Signature"), pushersign.HMACHex("app-secret", string(body))) {
			t.Errorf("badly signed webhook %s", body)
		}
		var hook struct {
			Events []struct{ Name, Channel string }
		}
		if err := json.Unmarshal(body, &hook); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		mu.Lock()
		for _, e := range hook.Events {
			got = append(got, e.Name+":"+e.Channel)
			if e.Name == "channel_occupied" {
				select {
				case occupied <- struct{}{}:
				default:
				}
			}
		}
		mu.Unlock()
	}))
	defer recv.Close()
	cfg := writeFile(t, "hooks.yaml", `
listen: "127.0.0.1:0"
damon: {enabled: false}
dcl: {enabled: false}
shutdown: {timeout: 5s}
pusher:
  apps:
    - id: app-id
      key: app-key
      secret: app-secret
      webhooks: [{url: "`+recv.URL+`", event_types: [channel_occupied, channel_vacated]}]
`)
	cmd := command(t, "serve", "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	logs := make(chan string, 1)
	addr := ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), "msg=\"switchboard listening\" addr="); ok {
			addr, _, _ = strings.Cut(a, " ")
			break
		}
	}
	go func() {
		var rest strings.Builder
		for sc.Scan() {
			rest.WriteString(sc.Text() + "\n")
		}
		logs <- rest.String()
		exited <- cmd.Wait()
	}()
	if addr == "" {
		_ = cmd.Process.Kill()
		t.Fatal("the server never said where it listens")
	}

	nc, br, _, err := ws.Dial(t.Context(), "ws://"+addr+"/app/app-key?protocol=7")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nc.Close() }()
	// The greeting may have come with the handshake response.
	c := net.Conn(nc)
	if br != nil {
		c = bufferedConn{nc, io.MultiReader(br, nc)}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := wsutil.ReadServerText(c); err != nil || !strings.Contains(string(p), "connection_established") {
		t.Fatalf("%s %v", p, err)
	}
	if err := wsutil.WriteClientText(c, []byte(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)); err != nil {
		t.Fatal(err)
	}
	if p, err := wsutil.ReadServerText(c); err != nil || !strings.Contains(string(p), "subscription_succeeded") {
		t.Fatalf("%s %v", p, err)
	}
	select {
	case <-occupied:
	case <-time.After(10 * time.Second):
		t.Fatal("no channel_occupied webhook")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The client is told to reconnect (4200) and let go.
	for {
		h, err := ws.ReadHeader(c)
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c, payload); err != nil {
			t.Fatal(err)
		}
		if h.OpCode == ws.OpClose {
			if code, _ := ws.ParseCloseFrameData(payload); code != 4200 {
				t.Fatalf("close %d, want 4200", code)
			}
			_ = c.Close()
			break
		}
	}
	select {
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, <-logs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, " ") != "channel_occupied:news channel_vacated:news" {
		t.Fatalf("webhooks received: %q", got)
	}
}

// bufferedConn reads what the handshake's reader holds before the socket.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
