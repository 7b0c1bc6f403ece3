package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// The console in a real browser (headless Chromium driven over the Chrome
// DevTools Protocol): refused without the token, signed in through its
// form; it shows a Pusher connection a test client opens, presence
// members, an event published through the signed HTTP API, and its form
// publishes events that a Pusher client and a Damon client receive.
//
// With SWITCHBOARD_CONSOLE_SCREENSHOTS=DIR it also saves the PNGs
// docs/console.md shows:
//
//	SWITCHBOARD_CONSOLE_SCREENSHOTS=$PWD/docs/console go test -run TestConsoleInBrowser ./internal/server/
const (
	browserConsoleToken = "browser-test-token-0123"
	browserAppSecret    = "browser-test-app-secret"
	browserDamonToken   = "browser-test-damon-token"
)

func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium is not installed (Debian: apt-get install chromium; scripts/test.sh installs it): the console's browser test cannot run"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	addr, _ := startServer(t, `
console: {enabled: true, token: "`+browserConsoleToken+`"}
pusher: {apps: [{id: app-id, key: app-key, secret: `+browserAppSecret+`}]}
damon: {enabled: true, tcp: false, token: `+browserDamonToken+`}
dcl: {enabled: false}
talo: {enabled: false}
`)
	base := "http://" + addr + "/console"
	shots := os.Getenv("SWITCHBOARD_CONSOLE_SCREENSHOTS")

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1400, 1100))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitFor polls a JavaScript condition in the page.
	waitFor := func(what, js string) {
		t.Helper()
		run(what, chromedp.Poll(js, nil, chromedp.WithPollingInterval(50*time.Millisecond)))
	}
	screenshot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		var png []byte
		run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Without the token: 401 and the login form, nothing else.
	var resp *network.Response
	var err error
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(base))
		return err
	})); err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("console without the token: HTTP %d", resp.Status)
	}
	var hasLogin, hasConsole bool
	run("login page", chromedp.Evaluate(`!!document.getElementById("login")`, &hasLogin),
		chromedp.Evaluate(`!!document.getElementById("events")`, &hasConsole))
	if !hasLogin || hasConsole {
		t.Fatalf("without the token: login form %v, console %v", hasLogin, hasConsole)
	}
	// A wrong token is refused with a message.
	run("wrong token", chromedp.SendKeys("#token", "not-the-token", chromedp.ByID), chromedp.Submit("#login", chromedp.ByID))
	var msg string
	run("wrong-token message", chromedp.WaitVisible("#login-error", chromedp.ByID), chromedp.Text("#login-error", &msg, chromedp.ByID))
	if msg != "Wrong token." {
		t.Fatalf("after a wrong token the form says %q", msg)
	}
	screenshot("login.png")
	run("sign in", chromedp.SendKeys("#token", browserConsoleToken, chromedp.ByID), chromedp.Submit("#login", chromedp.ByID),
		chromedp.WaitVisible("#events", chromedp.ByID))
	waitFor("the feed goes live", `document.getElementById("status") && document.getElementById("status").textContent === "live"`)

	if shots != "" {
		chartTraffic(t, addr)
		run("clear the stream", chromedp.Click("#clear", chromedp.ByID))
	}

	// A Pusher client connects, subscribes to a public and a presence
	// channel: the page lists the connection with both subscriptions, the
	// channels and the presence member.
	pc, socketID := dialPusherSocket(t, addr)
	consoleSubscribe(t, pc, `{"event":"pusher:subscribe","data":{"channel":"console-room"}}`)
	channelData := `{"user_id":"alice","user_info":{"name":"Alice"}}`
	auth := pushersign.ChannelAuth("app-key", browserAppSecret, socketID, "presence-lobby", channelData)
	consoleSubscribe(t, pc, fmt.Sprintf(`{"event":"pusher:subscribe","data":{"channel":"presence-lobby","auth":%q,"channel_data":%q}}`, auth, channelData))
	waitFor("the connection is listed", fmt.Sprintf(`[...document.querySelectorAll("#conns tbody tr")].some(tr =>
		tr.cells.length === 6 && tr.cells[0].textContent === "pusher" && tr.cells[2].textContent === %q && tr.cells[4].textContent === "2")`, socketID))
	waitFor("the channels are listed", `[...document.querySelectorAll("#channels tbody tr")].some(tr => tr.cells[2] && tr.cells[2].textContent === "console-room" && tr.cells[3].textContent === "1")`)
	waitFor("the presence member is listed", `document.getElementById("presence").textContent.includes('alice {"name":"Alice"}')`)
	run("open the connection's detail", chromedp.Click(fmt.Sprintf(`#conns tbody tr[data-key=%q]`, socketID), chromedp.ByQuery))
	waitFor("the detail shows the remote address and subscriptions", fmt.Sprintf(`(() => { const t = document.getElementById("conn-detail").textContent;
		return t.includes(%q) && t.includes("127.0.0.1:") && t.includes("presence-lobby") && t.includes("Queued bytes"); })()`, socketID))

	// An event published through the signed HTTP API appears in the stream.
	triggerSigned(t, addr, "console-room", "from-api", `{"n":1}`)
	waitFor("the API's event is shown", `[...document.querySelectorAll("#events tbody tr")].some(tr =>
		tr.cells[3].textContent === "console-room" && tr.cells[4].textContent === "from-api" && tr.cells[5].textContent === '{"n":1}')`)
	expectPusherEvent(t, pc, "from-api")

	// The form publishes to the Pusher channel; the client receives it.
	run("publish from the form",
		chromedp.SetValue("#pub-channel", "console-room", chromedp.ByID),
		chromedp.SetValue("#pub-event", "from-form", chromedp.ByID),
		chromedp.SetValue("#pub-data", `{"hello":"browser"}`, chromedp.ByID),
		chromedp.Click("#pub-send", chromedp.ByID))
	waitFor("the form says published", `document.getElementById("pub-result").textContent === "published"`)
	if got := expectPusherEvent(t, pc, "from-form"); got != `{"event":"from-form","channel":"console-room","data":"{\"hello\":\"browser\"}"}` {
		t.Fatalf("the Pusher client got %s", got)
	}
	waitFor("the form's event is shown", `[...document.querySelectorAll("#events tbody tr")].some(tr => tr.cells[4].textContent === "from-form")`)
	screenshot("console.png")

	// And to a Damon group: an identified WebSocket client in it receives
	// it. The stream shows the hub channel, group:s<name> for a string group.
	dc := dialDamonWS(t, addr, "console-group")
	waitFor("the Damon connection is listed with its address and group", `[...document.querySelectorAll("#conns tbody tr")].some(tr =>
		tr.cells[0].textContent === "damon" && tr.cells[3].textContent.startsWith("127.0.0.1:") && tr.cells[4].textContent === "3")`)
	run("publish to a Damon group",
		chromedp.Evaluate(`(() => { const s = document.getElementById("pub-protocol"); s.value = "damon"; s.dispatchEvent(new Event("change")); })()`, nil),
		chromedp.SetValue("#pub-group", "console-group", chromedp.ByID),
		chromedp.SetValue("#pub-event", "FROM_CONSOLE", chromedp.ByID),
		chromedp.SetValue("#pub-data", `{"n":2}`, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("pub-result").textContent = ""`, nil),
		chromedp.Click("#pub-send", chromedp.ByID))
	waitFor("the form says published", `document.getElementById("pub-result").textContent === "published"`)
	doc := expectDamonEvent(t, dc, "FROM_CONSOLE")
	if !strings.HasPrefix(doc, `{"op":0,"event":"FROM_CONSOLE","data":{"n":2},"intent":{"target":"GROUP","identifier":"console-group"},"id":"`) {
		t.Fatalf("the Damon client got %s", doc)
	}
	waitFor("the Damon event is shown", `[...document.querySelectorAll("#events tbody tr")].some(tr =>
		tr.cells[1].textContent === "damon" && tr.cells[3].textContent === "group:sconsole-group" && tr.cells[4].textContent === "FROM_CONSOLE")`)

	// A filter narrows the stream to what it names.
	run("filter on an event name",
		chromedp.Click("#clear", chromedp.ByID),
		chromedp.SetValue(`#filters input[name="event"]`, "only-this", chromedp.ByQuery),
		chromedp.Click(`#filters button[type="submit"]`, chromedp.ByQuery))
	// The page says "connecting…" until the new feed answers, and the
	// server registers a viewer before it answers.
	waitFor("the filtered feed is live", `document.getElementById("status").textContent === "live"`)
	triggerSigned(t, addr, "console-room", "not-this", `{}`)
	triggerSigned(t, addr, "console-room", "only-this", `{}`)
	waitFor("the filtered event is shown", `[...document.querySelectorAll("#events tbody tr")].some(tr => tr.cells[4].textContent === "only-this")`)
	var rows int
	run("count rows", chromedp.Evaluate(`document.querySelectorAll("#events tbody tr").length`, &rows))
	if rows != 1 {
		t.Fatalf("%d events shown with the filter, want only-this alone", rows)
	}
	if shots != "" {
		run("scroll to the connection detail", chromedp.ScrollIntoView("#conn-detail", chromedp.ByID))
		screenshot("console-filtered.png")
	}
}

// dialPusherSocket connects to app-key and returns the socket id.
func dialPusherSocket(t *testing.T, addr string) (net.Conn, string) {
	t.Helper()
	c, br, _, err := ws.Dial(context.Background(), "ws://"+addr+"/app/app-key?protocol=7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var msg struct{ Event, Data string }
	if br != nil {
		// The greeting came with the handshake response; read it from there.
		p, err := wsutil.ReadServerText(struct {
			io.Reader
			io.Writer
		}{io.MultiReader(br, c), c})
		ws.PutReader(br)
		if err != nil || json.Unmarshal(p, &msg) != nil {
			t.Fatalf("greeting %s %v", p, err)
		}
	} else {
		readJSON(t, c, &msg)
	}
	var data struct {
		SocketID string `json:"socket_id"`
	}
	if msg.Event != "pusher:connection_established" || json.Unmarshal([]byte(msg.Data), &data) != nil {
		t.Fatalf("greeting %+v", msg)
	}
	return c, data.SocketID
}

func readJSON(t *testing.T, c net.Conn, v any) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := wsutil.ReadServerText(c)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(p, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	return string(p)
}

func consoleSubscribe(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := wsutil.WriteClientText(c, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	var reply struct{ Event string }
	if p := readJSON(t, c, &reply); reply.Event != "pusher_internal:subscription_succeeded" {
		t.Fatalf("subscribe: %s", p)
	}
}

// expectPusherEvent reads up to the named event (skipping presence news).
func expectPusherEvent(t *testing.T, c net.Conn, event string) string {
	t.Helper()
	for {
		var m struct{ Event string }
		p := readJSON(t, c, &m)
		if m.Event == event {
			return p
		}
		if !strings.HasPrefix(m.Event, "pusher_internal:") {
			t.Fatalf("waiting for %s, got %s", event, p)
		}
	}
}

// triggerSigned publishes through the Pusher HTTP API, signed as the
// server SDKs sign.
func triggerSigned(t *testing.T, addr, channel, event, data string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": event, "channel": channel, "data": data})
	path := "/apps/app-id/events"
	q := url.Values{}
	pushersign.SignRESTQuery("app-key", browserAppSecret, "POST", path, q, body, time.Now())
	resp, err := http.Post("http://"+addr+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("trigger: HTTP %d", resp.StatusCode)
	}
}

// dialDamonWS connects to /damon and identifies into group.
func dialDamonWS(t *testing.T, addr, group string) net.Conn {
	t.Helper()
	c, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/damon")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := wsutil.WriteClientText(c, []byte(fmt.Sprintf(`{"op":1,"data":{"group":%q,"token":%q}}`, group, browserDamonToken))); err != nil {
		t.Fatal(err)
	}
	if p := readJSON(t, c, nil); !strings.HasPrefix(p, `{"op":1,"data":{"id":"`) {
		t.Fatalf("identify: %s", p)
	}
	return c
}

// expectDamonEvent reads up to the named EVENT, skipping heartbeats.
func expectDamonEvent(t *testing.T, c net.Conn, event string) string {
	t.Helper()
	for {
		var m struct {
			Op    int
			Event string
		}
		p := readJSON(t, c, &m)
		if m.Op == 0 && m.Event == event {
			return p
		}
		if m.Op != 3 {
			t.Fatalf("waiting for %s, got %s", event, p)
		}
	}
}

// chartTraffic gives the screenshot's charts something to draw: for 20
// seconds, more connections come and events go out at a changing rate.
func chartTraffic(t *testing.T, addr string) {
	t.Helper()
	for i := 0; i < 20; i++ {
		if i%3 == 0 {
			c, _ := dialPusherSocket(t, addr)
			consoleSubscribe(t, c, `{"event":"pusher:subscribe","data":{"channel":"ticker"}}`)
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
		for j := 0; j < 2+(i%5)*2; j++ {
			triggerSigned(t, addr, "ticker", "tick", `{}`)
		}
		time.Sleep(time.Second) // screenshots only: a second per chart sample
	}
}
