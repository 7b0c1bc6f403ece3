package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// freeAddr returns a loopback address nobody listens on right now (the
// Damon TCP listener takes a fixed address; the server tests do the same).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// startSwitchboard runs the real server in this process (the Damon and
// ws-room scenarios have no stand-in: they exercise the real front-ends)
// and returns a Common aimed at it, with the server's pid (this process)
// for the CPU and memory figures.
func startSwitchboard(t *testing.T, damonAddr string) Common {
	t.Helper()
	yaml := "listen: \"127.0.0.1:0\"\nshutdown: {timeout: 3s}\nlog: {level: warn}\n" +
		"limits: {connection_rate: {per_second: 0}}\n" +
		"damon: {enabled: true, token: bench-token, listen: \"" + damonAddr + "\"}\n" +
		"talo: {store_path: \"" + filepath.Join(t.TempDir(), "talo.db") + "\"}\n"
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
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
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("server shutdown hung")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr.String() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	host, port, _ := net.SplitHostPort(addr.String())
	p, _ := strconv.Atoi(port)
	c := DefaultCommon()
	c.Target = Target{Host: host, Port: p, AppID: "app-id", Key: "app-key", Secret: "app-secret"}
	c.Conns = 20
	c.ConnectConcurrency = 8
	c.ConnectTimeout = 5 * time.Second
	c.Settle = 50 * time.Millisecond
	c.Drain = 3 * time.Second
	c.MaxRunTime = 60 * time.Second
	c.SourceAddrs = DefaultSourceAddrs(c.Target, 2)
	c.ServerPID = os.Getpid()
	c.BackgroundSample = 0
	return c
}

// waitDamonTCP waits until the Damon listener (started by Run) accepts.
func waitDamonTCP(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			_ = nc.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkRamp: every step delivered exactly what its sends should cause
// (perSend deliveries each), and the idle memory figures are present.
func checkRamp(t *testing.T, rep *Report, held int, perSend int64, steps int) {
	t.Helper()
	if rep.Conns.Held != held || rep.Conns.ConnectErrors+rep.Conns.SetupErrors != 0 {
		t.Fatalf("connections %+v", rep.Conns)
	}
	if len(rep.Steps) != steps || rep.Best == nil || rep.Best.Rate != rep.Steps[steps-1].Rate {
		t.Fatalf("steps %+v best %+v", rep.Steps, rep.Best)
	}
	for _, s := range rep.Steps {
		if s.Sent == 0 || s.SendErrors != 0 || s.Expected != perSend*s.Sent || s.Received != s.Expected ||
			s.Missing != 0 || s.Extra != 0 || !s.Pass || s.Latency.Count != s.Received {
			t.Fatalf("step %+v (want %d deliveries per send)", s, perSend)
		}
	}
	if rep.Idle == nil || rep.Idle.Held != held || rep.Idle.ServerRSSAfterBytes <= 0 || rep.Idle.Lost != 0 {
		t.Fatalf("idle %+v", rep.Idle)
	}
}

// GLOBAL over raw TCP: every EVENT reaches every connection, the senders
// included (docs/damon.md).
func TestDamonGlobalAgainstSwitchboard(t *testing.T) {
	damonAddr := freeAddr(t)
	c := startSwitchboard(t, damonAddr)
	waitDamonTCP(t, damonAddr)
	rep, err := RunDamon(context.Background(), DamonConfig{Common: c, TCPAddr: damonAddr, Token: "bench-token",
		Intent: "GLOBAL", Groups: 4, Senders: 2, Rates: []float64{50, 100}, StepDuration: 300 * time.Millisecond,
		Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{Run: "damon-global"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Protocol != "damon" || rep.Scenario != "damon" || rep.Run != "damon-global" || rep.Target != damonAddr {
		t.Fatalf("report header %+v", rep)
	}
	checkRamp(t, rep, 22, 22, 2)
}

// GROUP over /damon: an EVENT reaches the 5 members of the group it names
// and nobody else (senders are in a group of their own).
func TestDamonGroupOverWebSocket(t *testing.T) {
	c := startSwitchboard(t, freeAddr(t))
	rep, err := RunDamon(context.Background(), DamonConfig{Common: c, WSPath: "/damon", Token: "bench-token",
		Intent: "GROUP", Groups: 4, Senders: 2, Rates: []float64{50}, StepDuration: 300 * time.Millisecond,
		Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	checkRamp(t, rep, 22, 5, 1)
}

// A wrong token is refused by the server at IDENTIFY: handshake errors,
// no ramp.
func TestDamonWrongTokenIsHandshakeErrors(t *testing.T) {
	c := startSwitchboard(t, freeAddr(t))
	c.Conns = 3
	rep, err := RunDamon(context.Background(), DamonConfig{Common: c, WSPath: "/damon", Token: "wrong",
		Intent: "GLOBAL", Groups: 1, Senders: 1, Rates: []float64{10}, StepDuration: 100 * time.Millisecond}, Env{})
	if err == nil || rep == nil {
		t.Fatalf("err %v, report %v", err, rep)
	}
	if rep.Conns.Held != 0 || rep.Conns.SetupErrors != 4 || len(rep.Conns.Errors) == 0 ||
		!strings.Contains(rep.Conns.Errors[0].Message, "IDENTIFY_FAILED") {
		t.Fatalf("connections %+v", rep.Conns)
	}
}

// ws-room: 12 peers in 3 rooms, each through the signed-challenge
// handshake; an update reaches the 3 other peers of its room.
func TestDCLAgainstSwitchboard(t *testing.T) {
	c := startSwitchboard(t, freeAddr(t))
	c.Conns = 12
	rep, err := RunDCL(context.Background(), DCLConfig{Common: c, PathPrefix: "/rooms", Rooms: 3, SendWorkers: 2,
		Rates: []float64{50, 100}, StepDuration: 300 * time.Millisecond, Limits: StepLimits{MaxP99: 5 * time.Second}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Protocol != "dcl" {
		t.Fatalf("protocol %q", rep.Protocol)
	}
	checkRamp(t, rep, 12, 3, 2)
}

// The TCP stream has no delimiters: documents back to back, split across
// reads anywhere, whitespace between them, braces inside strings.
func TestJSONDocReader(t *testing.T) {
	docs := []string{`{"op":3}`, `{"id":"a}b","op":0,"data":{"s":"{[\"}"},"x":[1,{"y":2}]}`, `{"op":4}`}
	stream := docs[0] + docs[1] + " \n\t" + docs[2]
	// One byte per read (every document split everywhere), and everything
	// in one read (several documents in one buffer).
	for name, r := range map[string]io.Reader{
		"byte by byte": iotest.OneByteReader(strings.NewReader(stream)),
		"one read":     strings.NewReader(stream),
	} {
		d := &jsonDocReader{br: bufio.NewReaderSize(r, 16)}
		for _, want := range docs {
			got, err := d.next()
			if err != nil || string(got) != want {
				t.Fatalf("%s: got %q, %v; want %q", name, got, err, want)
			}
		}
		if _, err := d.next(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: after the last document: %v", name, err)
		}
	}
}

// The generator's hand-encoded update is the WsPacket the server decodes,
// and the stamp in its body is found in the relayed frame.
func TestDCLUpdateEncoding(t *testing.T) {
	body := appendStamp(nil, 2, 7, 12345, 0)
	b := dclUpdate(nil, body)
	pkt, err := dclpb.Decode(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	u := pkt.GetPeerUpdateMessage()
	if u == nil || string(u.Body) != string(body) || u.Unreliable || b[0] != dclPeerUpdateTag {
		t.Fatalf("decoded %v", pkt)
	}
	if step, seq, ns, ok := parseStamp(b); !ok || step != 2 || seq != 7 || ns != 12345 {
		t.Fatalf("stamp %d %d %d %v", step, seq, ns, ok)
	}
}

func TestDamonDocuments(t *testing.T) {
	if got := string(damonIdentify(`g"1`, "tok")); got != `{"op":1,"data":{"group":"g\"1","token":"tok"}}` {
		t.Fatalf("identify %s", got)
	}
	if got := string(damonEvent(nil, []byte(`{"sbt":[0,1,2]}`), "sb-g-3")); got !=
		`{"op":0,"event":"sb-bench","data":{"sbt":[0,1,2]},"intent":{"target":"GROUP","identifier":"sb-g-3"}}` {
		t.Fatalf("event %s", got)
	}
	for doc, op := range map[string]int{`{"op":1,"data":{}}`: 1, `{"id":"x","op":0}`: 0, `{"data":1}`: -1} {
		if got := damonOp([]byte(doc)); got != op {
			t.Errorf("damonOp(%s) = %d, want %d", doc, got, op)
		}
	}
}
