package damon

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	"github.com/switchboard-rt/switchboard/internal/hub"
	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

var identifyReply = regexp.MustCompile(`^\{"op":1,"data":\{"id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","ping":30000\}\}$`)

var anyUUID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`)

// fuzzServer is one server for the whole fuzz run (metrics registration
// is too slow to repeat per input).
func fuzzServer(f *testing.F, requireIdentify bool) *Server {
	m := metrics.New()
	h := hub.New(memory.New(), m)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	if err := h.Start(ctx); err != nil {
		f.Fatal(err)
	}
	s, err := NewServer(Options{Hub: h, Metrics: m, Logger: quietLogger(), Token: testToken,
		MaxDocumentBytes: 256, RequireIdentify: requireIdentify,
		// Every fake connection comes from one address: throttling would
		// make an input's outcome depend on the inputs before it.
		IdentifyFailBurst: -1})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

type fuzzRun struct {
	sender, observer []string
	senderClosed     bool
}

// runSession feeds chunks to a fresh TCP session next to an identified
// observer in group "g", then closes both and returns what each was sent
// (uuids masked).
func runSession(t *testing.T, s *Server, chunks [][]byte) fuzzRun {
	oc, sc := &fakeConn{id: 1}, &fakeConn{id: 2}
	obs := s.newSession(oc, false).(*session)
	obs.handle([]byte(`{"op":1,"data":{"group":"g","token":"secret"}}`))
	snd := s.newSession(sc, true).(*session)
	for _, c := range chunks {
		snd.HandleMessage(c, true)
	}
	snd.HandleClose(transport.CloseInfo{})
	obs.HandleClose(transport.CloseInfo{})
	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d sessions left registered", n)
	}
	if n := s.opts.Hub.Connections(Namespace); n != 0 {
		t.Fatalf("%d hub connections left", n)
	}
	sc.mu.Lock()
	closed := sc.closed
	sc.mu.Unlock()
	r := fuzzRun{sender: sc.messages(), observer: oc.messages()[1:], senderClosed: closed}
	checkRun(t, r)
	return fuzzRun{sender: mask(r.sender), observer: mask(r.observer), senderClosed: closed}
}

func mask(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = anyUUID.ReplaceAllString(m, "U")
	}
	return out
}

// checkRun applies the invariants every run must satisfy, whatever the input.
func checkRun(t *testing.T, r fuzzRun) {
	raw := [][]string{r.sender, r.observer}
	big := wire.Limits{MaxDocumentSize: 1 << 20}
	for i, m := range raw[0] {
		env, err := big.ParseEnvelope([]byte(m))
		if err != nil {
			t.Fatalf("sender got a message that is not a Damon document: %q (%v)", m, err)
		}
		switch m {
		case wire.MsgPong, wire.MsgIdentifyFailed, wire.MsgMessageTooBig:
		default:
			switch env.Op {
			case wire.OpIdentify:
				if !identifyReply.MatchString(m) {
					t.Fatalf("bad IDENTIFY reply %q", m)
				}
			case wire.OpEvent, wire.OpReply: // GLOBAL reaches the sender too
			default:
				t.Fatalf("unexpected message to sender %q", m)
			}
		}
		if (m == wire.MsgIdentifyFailed || m == wire.MsgMessageTooBig) && i != len(raw[0])-1 {
			t.Fatalf("messages after a DISCONNECT: %q", raw[0][i:])
		}
	}
	if n := len(raw[0]); n > 0 && (raw[0][n-1] == wire.MsgIdentifyFailed || raw[0][n-1] == wire.MsgMessageTooBig) && !r.senderClosed {
		t.Fatal("DISCONNECT without close")
	}
	for _, m := range raw[1] {
		env, err := big.ParseEnvelope([]byte(m))
		if err != nil || (env.Op != wire.OpEvent && env.Op != wire.OpReply) {
			t.Fatalf("observer got %q (%v)", m, err)
		}
		if env.Op == wire.OpEvent && (env.ID.Kind() != wire.KindString || !uuidV4.Match(env.ID.Text())) {
			t.Fatalf("forwarded EVENT without a fresh uuid: %q", m)
		}
	}
}

// FuzzSession drives the session's message handling (framing, envelope,
// IDENTIFY, routing, fan-out encoding) with arbitrary bytes split at
// arbitrary points: it never panics, everything it sends is a valid Damon
// document, nothing follows a DISCONNECT, the session always unregisters,
// and the outcome does not depend on how the bytes were split.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		`{"op":3}{"op":3}`,
		`{"op":1,"data":{"group":"g","token":"secret"}}{"op":0,"event":"E","intent":{"target":"GROUP","identifier":"g"}}`,
		`{"op":0,"id":1,"data":[1e3,"\u0041"],"intent":{"target":"GLOBAL"}}`,
		`{"op":5,"id":"r","intent":{"target":"GLOBAL"}} {"op":5,"intent":{"target":"DIRECT","identifier":"x"}}`,
		`{"op":1,"data":{"group":"g","token":"bad"}}{"op":0,"intent":{"target":"GLOBAL"}}`,
		`{op:3}xx{"op":"1"}[1]{"op":1}{"op":0}{"op":0,"intent":{"target":"global"}}`,
		`{"op":0,"data":"` + string(make([]byte, 300)) + `"}`,
		`{"op":0,"intent":{"target":"GLOBAL"},"data":{"\ud800":-0,"0":1,"id":2},"id":null,"id":3}`,
	} {
		f.Add([]byte(seed), []byte{7, 1, 30})
	}
	plain, strict := fuzzServer(f, false), fuzzServer(f, true)
	f.Fuzz(func(t *testing.T, data, splits []byte) {
		for _, s := range []*Server{plain, strict} {
			whole := runSession(t, s, [][]byte{data})

			var chunks [][]byte
			rest := data
			for _, n := range splits {
				k := min(int(n), len(rest))
				chunks = append(chunks, rest[:k])
				rest = rest[k:]
			}
			chunks = append(chunks, rest)
			split := runSession(t, s, chunks)
			if !slices.Equal(whole.sender, split.sender) || !slices.Equal(whole.observer, split.observer) || whole.senderClosed != split.senderClosed {
				t.Fatalf("splitting %v changed the outcome:\nwhole %q %q\nsplit %q %q", splits, whole.sender, whole.observer, split.sender, split.observer)
			}
		}
	})
}

// FuzzDeliver: Deliver takes any payload a (possibly foreign) publisher put
// on the damon namespace without panicking, and an EVENT payload of ours
// always comes out as the template with a uuid in the slot.
func FuzzDeliver(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, '{', '}'})
	f.Add([]byte(`{"op":5}`))
	f.Add(append([]byte{0, 0, 0, 0, 7}, `{"id":"00000000-0000-4000-8000-000000000000"}`...))
	s := fuzzServer(f, false)
	f.Fuzz(func(t *testing.T, payload []byte) {
		c := &fakeConn{}
		ss := &session{srv: s, conn: c}
		ss.Deliver(transport.Text(payload))
		msgs := c.messages()
		if len(msgs) > 1 {
			t.Fatal("more than one message")
		}
		if len(payload) == 0 {
			if len(msgs) != 0 {
				t.Fatal("empty payload sent")
			}
			return
		}
		if payload[0] != markEvent {
			if len(msgs) != 1 || msgs[0] != string(payload) {
				t.Fatal("non-EVENT payload not passed through")
			}
			return
		}
		if len(msgs) == 1 {
			at := int(payload[1])<<24 | int(payload[2])<<16 | int(payload[3])<<8 | int(payload[4])
			got := msgs[0]
			if len(got) != len(payload)-hdrLen || got[:at] != string(payload[hdrLen:hdrLen+at]) ||
				got[at+36:] != string(payload[hdrLen+at+36:]) || !uuidV4.MatchString(got[at:at+36]) {
				t.Fatalf("bad patch of %q: %q", payload, got)
			}
		}
	})
}
