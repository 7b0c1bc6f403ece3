package damon

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// Black-box tests over real sockets. Most run on both front-ends; the
// framing tests are TCP-only, since WebSocket frames are the framing there.

func forEachTransport(t *testing.T, f func(t *testing.T, e *testEnv, dial dialer)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, nil), tr.dial)
		})
	}
}

func TestIdentify(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a := dial(e, "A")
		id := a.identify("g1") // checks the reply byte for byte
		// Re-IDENTIFY is allowed, returns the same id and moves the group.
		a.send(`{"op":1,"data":{"group":"g2","token":"secret"}}`)
		if again := a.identifyReply(30000); again != id {
			t.Fatalf("re-identify changed the id: %s → %s", id, again)
		}
		a.ping()
	})
}

func TestIdentifyFailed(t *testing.T) {
	for _, doc := range []string{
		`{"op":1,"data":{"group":"g1","token":"wrong"}}`,
		`{"op":1,"data":{"group":"","token":"secret"}}`,
		`{"op":1,"data":{"group":"g1","token":""}}`,
		`{"op":1,"data":{"group":"g1"}}`,
		`{"op":1,"data":{"token":"secret"}}`,
		`{"op":1,"data":{"group":"g1","token":123}}`,
		`{"op":1,"data":"secret"}`,
		`{"op":1,"data":{"group":"g1","token":"secre"}}`,
		`{"op":1,"data":{"group":"g1","token":"secret2"}}`,
	} {
		forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
			c := dial(e, "BAD")
			c.send(doc)
			c.expect(`{"op":2,"data":"IDENTIFY_FAILED"}`)
			c.expectClosed()
			if c.ws && c.closeCode != 1008 {
				t.Fatalf("close code %d", c.closeCode)
			}
			if n := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "IDENTIFY_FAILED"}); n != 1 {
				t.Fatalf("disconnect counter %v", n)
			}
		})
	}
}

func TestFailedReidentifyDisconnects(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a := dial(e, "A")
		a.identify("g1")
		a.send(`{"op":1,"data":{"group":"g1","token":"nope"}}`)
		a.expect(`{"op":2,"data":"IDENTIFY_FAILED"}`)
		a.expectClosed()
	})
}

func TestEmptyConfiguredTokenRejectsEveryone(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Token = "" })
	c := e.dialTCP("C")
	c.send(`{"op":1,"data":{"group":"g1","token":""}}`)
	c.expect(`{"op":2,"data":"IDENTIFY_FAILED"}`)
	c.expectClosed()
}

func TestIdentifyWithoutDataGetsNoReply(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		c := dial(e, "NODATA")
		c.send(`{"op":1}`)
		c.send(`{"op":1,"data":null}`)
		c.ping() // nothing came before the PONG, and the connection is up
		if n := e.dropped("identify_no_data"); n != 2 {
			t.Fatalf("identify_no_data %v", n)
		}
	})
}

func TestGlobalReachesEveryoneWithFreshIDs(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a, b, c := dial(e, "A"), dial(e, "B"), dial(e, "UNIDENTIFIED")
		a.identify("g1")
		b.identify("g2")
		c.ping() // connected and registered
		a.send(`{"id":"X-global","op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GLOBAL"}}`)
		seen := map[string]bool{}
		for _, r := range []*client{a, b, c} {
			id, rest := idOf(t, r.next())
			if want := `{"id":"ID","op":0,"event":"HELLO","data":{"n":1},"intent":{"target":"GLOBAL"}}`; rest != want {
				t.Fatalf("%s got %s", r.name, rest)
			}
			if !uuidV4.MatchString(id) || id == "X-global" || seen[id] {
				t.Fatalf("%s: id %q not a fresh uuid (seen %v)", r.name, id, seen)
			}
			seen[id] = true
		}
		// An unidentified connection may send too (reference default).
		c.send(`{"op":0,"event":"FROM_C","data":null,"intent":{"target":"GLOBAL","identifier":null}}`)
		for _, r := range []*client{a, b, c} {
			_, rest := idOf(t, r.next())
			if want := `{"op":0,"event":"FROM_C","data":null,"intent":{"target":"GLOBAL","identifier":null},"id":"ID"}`; rest != want {
				t.Fatalf("%s got %s", r.name, rest)
			}
		}
	})
}

func TestEventIsForwardedAsTheReferencePrintsIt(t *testing.T) {
	e := newEnv(t, nil)
	a := e.dialTCP("A")
	cases := []struct{ in, out string }{
		// id appended last when absent.
		{`{"op":0,"event":"NOID","data":[1,2],"intent":{"target":"GLOBAL"}}`,
			`{"op":0,"event":"NOID","data":[1,2],"intent":{"target":"GLOBAL"},"id":"ID"}`},
		// id kept in place, any type replaced.
		{`{"op":0,"id":7,"event":"X","intent":{"target":"GLOBAL"}}`,
			`{"op":0,"id":"ID","event":"X","intent":{"target":"GLOBAL"}}`},
		// JSON.stringify(JSON.parse(doc)): whitespace, numbers, escapes; extra keys kept.
		{"{ \"op\" : 0 , \"event\":\"HELLO\", \"data\": {\"n\": 1e3, \"s\":\"\\u0041\\/\"}, \"x\":true,\n \"intent\": {\"target\": \"GLOBAL\"}}",
			`{"op":0,"event":"HELLO","data":{"n":1000,"s":"A/"},"x":true,"intent":{"target":"GLOBAL"},"id":"ID"}`},
	}
	for _, tc := range cases {
		a.send(tc.in)
		if _, got := idOf(t, a.next()); got != tc.out {
			t.Fatalf("in  %s\ngot %s\nwant %s", tc.in, got, tc.out)
		}
	}
	// A REPLY is forwarded with its id and otherwise canonical too.
	a.send(`{"op":5, "id":"keep-me", "data":{"n":1.50}, "intent":{"target":"GLOBAL"}}`)
	a.expect(`{"op":5,"id":"keep-me","data":{"n":1.5},"intent":{"target":"GLOBAL"}}`)
}

func TestGroup(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a, b, c, u := dial(e, "A"), dial(e, "B"), dial(e, "C"), dial(e, "UNIDENTIFIED")
		a.identify("g1")
		b.identify("g1")
		c.identify("g2")
		u.ping()
		a.send(`{"id":"X-group","op":0,"event":"HELLO","data":2,"intent":{"target":"GROUP","identifier":"g1"}}`)
		ids := map[string]bool{}
		for _, r := range []*client{a, b} {
			id, rest := idOf(t, r.next())
			if rest != `{"id":"ID","op":0,"event":"HELLO","data":2,"intent":{"target":"GROUP","identifier":"g1"}}` || ids[id] || !uuidV4.MatchString(id) {
				t.Fatalf("%s got %s", r.name, rest)
			}
			ids[id] = true
		}
		c.nothingFrom(a)
		u.nothingFrom(a)

		// Re-IDENTIFY moves B from g1 to g2.
		b.send(`{"op":1,"data":{"group":"g2","token":"secret"}}`)
		b.identifyReply(30000)
		a.send(`{"op":0,"event":"TO_G1","intent":{"target":"GROUP","identifier":"g1"}}`)
		a.next()
		a.send(`{"op":0,"event":"TO_G2","intent":{"target":"GROUP","identifier":"g2"}}`)
		for _, r := range []*client{b, c} {
			if _, rest := idOf(t, r.next()); !strings.Contains(rest, `"TO_G2"`) {
				t.Fatalf("%s got %s", r.name, rest)
			}
		}
		a.nothingFrom()

		// Nobody in the group: dropped and counted.
		before := e.dropped("no_recipient")
		a.send(`{"op":0,"event":"X","intent":{"target":"GROUP","identifier":"nobody"}}`)
		a.ping()
		if e.dropped("no_recipient") != before+1 {
			t.Fatal("no_recipient not counted")
		}
		// A closed member leaves its group.
		_ = c.nc.Close()
		eventually(t, "C gone", func() bool { return e.srv.opts.Hub.LocalSubscribers(Namespace, "group:sg2") == 1 })
	})
}

func TestGroupKeysCompareAsJavaScriptMapKeys(t *testing.T) {
	e := newEnv(t, nil)
	n, s := e.dialTCP("NUM"), e.dialTCP("STR")
	n.send(`{"op":1,"data":{"group":5,"token":"secret"}}`)
	n.identifyReply(30000)
	s.identify("5")
	s.send(`{"op":0,"event":"N","intent":{"target":"GROUP","identifier":5.0}}`)
	n.next()
	s.nothingFrom()
	n.send(`{"op":0,"event":"S","intent":{"target":"GROUP","identifier":"5"}}`)
	s.next()
	n.nothingFrom()
}

func TestDirectAndReply(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a, b, c := dial(e, "A"), dial(e, "B"), dial(e, "C")
		idA := a.identify("g1")
		idB := b.identify("g1")
		c.identify("g1")
		a.send(`{"id":"X-direct","op":0,"event":"HELLO","data":3,"intent":{"target":"DIRECT","identifier":"` + idB + `"}}`)
		id, rest := idOf(t, b.next())
		if rest != `{"id":"ID","op":0,"event":"HELLO","data":3,"intent":{"target":"DIRECT","identifier":"`+idB+`"}}` || !uuidV4.MatchString(id) {
			t.Fatalf("B got %s", rest)
		}
		b.send(`{"id":"Y-reply","op":5,"event":"HELLO","data":4,"intent":{"target":"DIRECT","identifier":"` + idA + `"}}`)
		a.expect(`{"id":"Y-reply","op":5,"event":"HELLO","data":4,"intent":{"target":"DIRECT","identifier":"` + idA + `"}}`)
		c.nothingFrom(a, b)
		b.nothingFrom()

		// REPLY without id stays without id; REPLY to a group keeps its id for everyone.
		a.send(`{"op":5,"data":1,"intent":{"target":"DIRECT","identifier":"` + idB + `"}}`)
		b.expect(`{"op":5,"data":1,"intent":{"target":"DIRECT","identifier":"` + idB + `"}}`)
		a.send(`{"op":5,"id":"R","intent":{"target":"GROUP","identifier":"g1"}}`)
		for _, r := range []*client{a, b, c} {
			r.expect(`{"op":5,"id":"R","intent":{"target":"GROUP","identifier":"g1"}}`)
		}

		// A non-string or missing recipient can never match: dropped,
		// counted, sender unaffected. An unknown uuid is published like any
		// DIRECT (with a cluster engine its socket may be on another node):
		// forwarded, not a drop.
		before := e.dropped("no_recipient")
		fwdBefore := e.counter("switchboard_damon_forwarded_total", map[string]string{"op": "event", "target": "direct"})
		a.send(`{"op":0,"intent":{"target":"DIRECT","identifier":"00000000-0000-4000-8000-000000000000"}}`)
		a.send(`{"op":0,"intent":{"target":"DIRECT","identifier":5}}`)
		a.send(`{"op":0,"intent":{"target":"DIRECT"}}`)
		a.ping()
		if got := e.dropped("no_recipient"); got != before+2 {
			t.Fatalf("no_recipient %v, want %v", got, before+2)
		}
		if got := e.counter("switchboard_damon_forwarded_total", map[string]string{"op": "event", "target": "direct"}); got != fwdBefore+1 {
			t.Fatalf("forwarded direct %v, want %v", got, fwdBefore+1)
		}
		b.nothingFrom(a)
	})
}

func TestDirectReachesUnidentifiedConnections(t *testing.T) {
	// The reference delivers DIRECT to any socket whose uuid is known; an
	// unidentified socket never learns its uuid, but a peer could. Here we
	// peek at the server's registry to get it.
	e := newEnv(t, nil)
	a, u := e.dialTCP("A"), e.dialTCP("U")
	u.ping()
	var uid string
	idA := a.key(e)
	for _, ss := range e.srv.sessions.AppendTo(nil) {
		if ss.key != idA {
			uid = ss.key // immutable after accept
		}
	}
	a.send(`{"op":0,"event":"D","intent":{"target":"DIRECT","identifier":"` + uid + `"}}`)
	if _, rest := idOf(t, u.next()); !strings.Contains(rest, `"D"`) {
		t.Fatal(rest)
	}
}

func TestMalformedDocumentsAreDroppedAndCounted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		c := dial(e, "C")
		other := dial(e, "OTHER")
		other.identify("g")
		cases := []struct{ doc, reason string }{
			{`{op:3}`, "parse"},
			{`{"op":3`, "parse"}, // on TCP the rest of the document never comes... see below
			{`[1,2]`, "not_object"},
			{`"str"`, "not_object"},
			{`{"op":"0","intent":{"target":"GLOBAL"}}`, "unknown_op"},
			{`{"op":9}`, "unknown_op"},
			{`{"event":"x"}`, "unknown_op"},
			{`{"op":0,"event":"NOINTENT","data":4}`, "no_intent"},
			{`{"op":5,"event":"LOWER","data":5,"intent":{"target":"global"}}`, "bad_target"},
			{`{"op":0,"intent":"GLOBAL"}`, "bad_target"},
			{`{"op":0,"intent":{"target":"BROADCAST"}}`, "bad_target"},
			{`{"op":1}`, "identify_no_data"},
			{strings.Repeat("[", 600) + strings.Repeat("]", 600), "too_deep"},
		}
		want := map[string]float64{}
		for _, tc := range cases {
			if tc.doc == `{"op":3` && !c.ws {
				continue // an unfinished TCP document just waits for more bytes
			}
			c.send(tc.doc)
			want[tc.reason]++
		}
		c.ping() // still connected, in sync, and no reply to anything above
		for reason, n := range want {
			if got := e.dropped(reason); got != n {
				t.Errorf("dropped{reason=%q} = %v, want %v", reason, got, n)
			}
		}
		// A client DISCONNECT is ignored, as in the reference.
		c.send(`{"op":2,"data":"NO_REASON"}`)
		other.nothingFrom(c)
		other.ping()
	})
}

func TestTCPFraming(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialTCP("C")
	// Coalesced: the reference loses both; we answer both.
	c.send(`{"op":3}{"op":3}`)
	c.expect(`{"op":4}`)
	c.expect(`{"op":4}`)
	// Whitespace and newlines between documents.
	c.send("\n {\"op\":3}\r\n\t{\"op\":3}  \n")
	c.expect(`{"op":4}`)
	c.expect(`{"op":4}`)
	// Split across writes at every kind of boundary.
	doc := `{"op":1,"data":{"group":"g \"q\" é","token":"secret"}}`
	for _, cut := range []int{1, 5, 6, 20, len(doc) - 1} {
		c.send(doc[:cut])
		time.Sleep(20 * time.Millisecond) // separate reads on the server
		c.send(doc[cut:])
		c.identifyReply(30000)
	}
	// Byte by byte.
	for i := range len(`{"op":3}`) {
		c.send(`{"op":3}`[i : i+1])
		time.Sleep(2 * time.Millisecond)
	}
	c.expect(`{"op":4}`)
	// IDENTIFY and an EVENT in one write: both acted on, in order.
	c.send(`{"op":1,"data":{"group":"g","token":"secret"}}{"op":0,"event":"E","intent":{"target":"GROUP","identifier":"g"}}`)
	c.identifyReply(30000)
	if _, rest := idOf(t, c.next()); rest != `{"op":0,"event":"E","intent":{"target":"GROUP","identifier":"g"},"id":"ID"}` {
		t.Fatal(rest)
	}
	// Two 20 KB documents in one write: the reference refuses the 40 KB
	// chunk; the limit here is per document.
	twenty := `{"op":0,"event":"T","data":"` + strings.Repeat("t", 20000) + `","intent":{"target":"DIRECT","identifier":"nobody"}}`
	c.send(twenty + twenty)
	c.ping()
	// Garbage between documents is dropped once and the stream resyncs.
	c.send(`xyz{"op":3}{op:4}{"op":3}`)
	c.expect(`{"op":4}`)
	c.expect(`{"op":4}`)
	if n := e.dropped("parse"); n != 2 {
		t.Fatalf("parse drops %v", n)
	}
}

func TestDocumentsAfterAFatalOneAreIgnored(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dialTCP("A"), e.dialTCP("B")
	b.ping()
	a.send(`{"op":1,"data":{"group":"g","token":"bad"}}{"op":0,"intent":{"target":"GLOBAL"}}`)
	a.expect(`{"op":2,"data":"IDENTIFY_FAILED"}`)
	a.expectClosed()
	// A's GLOBAL, behind its failed IDENTIFY in the same read, was never
	// acted upon (the session was closing before it was parsed).
	b.nothingFrom()
}

func TestMessageTooBig(t *testing.T) {
	big := func(n int) string {
		// An EVENT of exactly n bytes.
		head, tail := `{"op":0,"event":"BIG","data":"`, `","intent":{"target":"GLOBAL"}}`
		return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
	}
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		ok, other := dial(e, "EXACT"), dial(e, "OTHER")
		other.ping()
		// Exactly the limit is accepted (the reference's check is `length > max`).
		ok.send(big(32768))
		if _, rest := idOf(t, other.next()); !strings.HasPrefix(rest, `{"op":0,"event":"BIG"`) {
			t.Fatal("32768-byte document not delivered")
		}
		ok.next()
		// The transcript's 40 061-byte EVENT.
		c := dial(e, "BIG")
		c.send(big(40061))
		c.expect(`{"op":2,"data":"MESSAGE_TOO_BIG"}`)
		c.expectClosed()
		if c.ws && c.closeCode != 1009 {
			t.Fatalf("close code %d", c.closeCode)
		}
		other.nothingFrom()
		other.ping()
		ok.ping()
		if n := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "MESSAGE_TOO_BIG"}); n != 1 {
			t.Fatalf("counter %v", n)
		}
	})
}

func TestMessageTooBigConfigurable(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxDocumentBytes = 100 })
	c := e.dialTCP("C")
	c.send(`{"op":0,"data":"` + strings.Repeat("y", 100) + `","intent":{"target":"GLOBAL"}}`)
	c.expect(`{"op":2,"data":"MESSAGE_TOO_BIG"}`)
	c.expectClosed()
	// Split over many writes: the limit is per document, not per read.
	d := e.dialTCP("D")
	d.send(`{"op":0,"data":"`)
	for range 10 {
		time.Sleep(5 * time.Millisecond)
		if _, err := io.WriteString(d.nc, strings.Repeat("z", 20)); err != nil {
			break // closed by the server already
		}
	}
	d.expect(`{"op":2,"data":"MESSAGE_TOO_BIG"}`)
	d.expectClosed()
	// Garbage that never resyncs is bounded the same way.
	g := e.dialTCP("G")
	g.send(`{"op":0,"data":"unterminated` + strings.Repeat(" ", 200))
	g.expect(`{"op":2,"data":"MESSAGE_TOO_BIG"}`)
	g.expectClosed()
}

func TestWebSocketHugeMessageRefusedByTransport(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialWS("HUGE")
	c.send(`{"op":0,"data":"` + strings.Repeat("x", 200<<10) + `","intent":{"target":"GLOBAL"}}`)
	c.expectClosed()
	if c.closeCode != ws.StatusMessageTooBig {
		t.Fatalf("close code %d", c.closeCode)
	}
}

func TestWebSocketBinaryFrameIsADocumentToo(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dialWS("BIN")
	if err := wsutil.WriteClientBinary(c.nc, []byte(`{"op":3}`)); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"op":4}`)       // answers go out as text
	c.send(`{"op":3}{"op":3}`) // one frame, one document: two is a parse error
	c.ping()
	if e.dropped("parse") != 1 {
		t.Fatal("coalesced frame not dropped as parse")
	}
}

func TestMixedTransports(t *testing.T) {
	e := newEnv(t, nil)
	tcp, wsc := e.dialTCP("TCP"), e.dialWS("WS")
	idT := tcp.identify("g")
	idW := wsc.identify("g")
	tcp.send(`{"op":0,"event":"T2W","intent":{"target":"DIRECT","identifier":"` + idW + `"}}`)
	if _, rest := idOf(t, wsc.next()); !strings.Contains(rest, "T2W") {
		t.Fatal(rest)
	}
	wsc.send(`{"op":5,"id":"r1","event":"W2T","intent":{"target":"DIRECT","identifier":"` + idT + `"}}`)
	tcp.expect(`{"op":5,"id":"r1","event":"W2T","intent":{"target":"DIRECT","identifier":"` + idT + `"}}`)
	wsc.send(`{"op":0,"event":"G","intent":{"target":"GROUP","identifier":"g"}}`)
	tcp.next()
	wsc.next()
}

func TestRequireIdentify(t *testing.T) {
	forEachTransportWith(t, func(o *Options) { o.RequireIdentify = true }, func(t *testing.T, e *testEnv, dial dialer) {
		a, u := dial(e, "A"), dial(e, "U")
		a.identify("g")
		u.ping()
		// Unidentified traffic is dropped and counted.
		u.send(`{"op":0,"event":"FROM_U","intent":{"target":"GLOBAL"}}`)
		u.send(`{"op":5,"event":"FROM_U","intent":{"target":"GLOBAL"}}`)
		a.nothingFrom(u)
		if n := e.dropped("unidentified"); n != 2 {
			t.Fatalf("unidentified %v", n)
		}
		// Unidentified connections are excluded from GLOBAL.
		a.send(`{"op":0,"event":"FROM_A","intent":{"target":"GLOBAL"}}`)
		a.next()
		u.nothingFrom(a)
		// Once identified, both ways work.
		u.identify("h")
		a.send(`{"op":0,"event":"FROM_A2","intent":{"target":"GLOBAL"}}`)
		a.next()
		if _, rest := idOf(t, u.next()); !strings.Contains(rest, "FROM_A2") {
			t.Fatal(rest)
		}
		u.send(`{"op":0,"event":"FROM_U2","intent":{"target":"GLOBAL"}}`)
		a.next()
		u.next()
	})
}

func TestRequireIdentifyExcludesUnidentifiedFromDirect(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequireIdentify = true })
	a, u := e.dialTCP("A"), e.dialTCP("U")
	idA := a.identify("g")
	u.ping()
	var uid string
	for _, ss := range e.srv.sessions.AppendTo(nil) {
		if ss.key != idA {
			uid = ss.key // immutable after accept
		}
	}
	a.send(`{"op":0,"event":"D","intent":{"target":"DIRECT","identifier":"` + uid + `"}}`)
	u.nothingFrom(a)
	// Not a drop: direct:<uuid> has no local subscriber, which with a
	// cluster engine is the normal case on every node but one.
	if e.dropped("no_recipient") != 0 {
		t.Fatal("DIRECT without a local subscriber counted as no_recipient")
	}
	if got := u.identify("h"); got != uid {
		t.Fatalf("id changed at IDENTIFY: %s → %s", uid, got)
	}
	a.send(`{"op":0,"event":"D","intent":{"target":"DIRECT","identifier":"` + uid + `"}}`)
	u.next()
}

func TestWithoutRequireIdentifyUnidentifiedMaySend(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e *testEnv, dial dialer) {
		a, u := dial(e, "A"), dial(e, "U")
		a.identify("g")
		u.send(`{"op":0,"event":"FROM_U","intent":{"target":"GROUP","identifier":"g"}}`)
		if _, rest := idOf(t, a.next()); !strings.Contains(rest, "FROM_U") {
			t.Fatal(rest)
		}
		u.nothingFrom() // not in the group itself (its GROUP was already delivered to A)
	})
}

func forEachTransportWith(t *testing.T, mutate func(*Options), f func(t *testing.T, e *testEnv, dial dialer)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			f(t, newEnv(t, mutate), tr.dial)
		})
	}
}

func TestMisbehavingClientDoesNotAffectOthers(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Transport.SendQueueBytes = 1 << 20
		// Every bad IDENTIFY below is to be answered; throttling has
		// its own test (throttle_test.go).
		o.IdentifyFailBurst = -1
	})
	a, b := e.dialTCP("A"), e.dialWS("B")
	a.identify("g")
	b.identify("g")
	// A stalled reader: connects, never reads.
	stalled, err := netDial(e.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stalled.Close() }()
	eventually(t, "stalled registered", func() bool { return e.srv.Sessions() == 3 })

	// Bad actors, in parallel with real traffic.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			bad, err := netDial(e.tcp)
			if err != nil {
				t.Error(err)
				return
			}
			switch i % 5 {
			case 0:
				_, _ = bad.Write([]byte(`{op:0}{"op":9}[1]` + strings.Repeat("}", 50)))
			case 1:
				_, _ = bad.Write([]byte(`{"op":1,"data":{"group":"g","token":"x"}}{"op":0,"intent":{"target":"GLOBAL"}}`))
			case 2:
				_, _ = bad.Write([]byte(`{"op":0,"data":"` + strings.Repeat("x", 40000)))
			case 3:
				_, _ = bad.Write([]byte(`{"op":0,"intent":{"target":"DIRECT","identifier":"nobody"}}{"op":1}`))
			case 4:
				_, _ = bad.Write([]byte(`{"op":0,"intent":{"target":"GROUP","identifier":"g"},"data":[[[[`)) // never finished
			}
			// Half-close and read to the end, so that the server gets
			// everything before the socket goes (a close with unread
			// data would reset the connection and lose what we sent).
			_ = bad.(*net.TCPConn).CloseWrite()
			_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, bad)
			_ = bad.Close()
		}
	}()
	// 12 MB of GLOBAL traffic: more than the stalled socket's kernel
	// buffers (~128 KiB receive, up to 4 MiB send) and its 1 MiB queue
	// can hold.
	payload := strings.Repeat("p", 30000)
	const n = 400
	go func() {
		for i := range n {
			doc := `{"op":0,"event":"E","data":{"i":` + fmt.Sprint(i) + `,"p":"` + payload + `"},"intent":{"target":"GLOBAL"}}`
			if _, err := io.WriteString(a.nc, doc); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond) // a paced publisher (~15 MB/s), not one burst
		}
	}()
	for _, r := range []*client{a, b} {
		for i := range n {
			doc := r.nextWithin(10 * time.Second)
			if !strings.Contains(doc, fmt.Sprintf(`"data":{"i":%d,`, i)) {
				t.Fatalf("%s: message %d out of order or missing: %.80s", r.name, i, doc)
			}
		}
	}
	<-done
	a.ping()
	b.ping()
	eventually(t, "slow consumer cut", func() bool {
		return e.counter("switchboard_slow_consumer_disconnects_total", map[string]string{"protocol": "damon"}) == 1
	})
	eventually(t, "bad clients gone", func() bool { return e.srv.Sessions() == 2 })
	if n := e.counter("switchboard_damon_disconnects_total", map[string]string{"reason": "IDENTIFY_FAILED"}); n != 40 {
		t.Fatalf("IDENTIFY_FAILED %v", n)
	}
}

func TestDrainClosesConnections(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dialTCP("A"), e.dialWS("B")
	a.identify("g")
	b.identify("g")
	e.srv.Drain(t.Context())
	a.expectClosed()
	b.expectClosed()
	if e.srv.Sessions() != 0 {
		t.Fatal("sessions left")
	}
	if _, err := netDial(e.tcp); err == nil {
		t.Fatal("listener still accepting")
	}
}

func netDial(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, time.Second)
}
