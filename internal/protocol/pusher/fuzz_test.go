package pusher

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// memConn is an in-process transport.Conn: the fuzz target exercises the
// protocol's decoding and state machine, not the socket.
type memConn struct {
	mu     sync.Mutex
	sent   [][]byte
	closed uint16
}

func (c *memConn) ID() uint64           { return 7 }
func (c *memConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }
func (c *memConn) Send(m *transport.Message) error {
	c.mu.Lock()
	c.sent = append(c.sent, m.Payload)
	c.mu.Unlock()
	return nil
}
func (c *memConn) Close(code uint16, _ string) { c.mu.Lock(); c.closed = code; c.mu.Unlock() }
func (c *memConn) Ping()                       {}
func (c *memConn) LastRead() time.Time         { return time.Now() }
func (c *memConn) QueuedBytes() int            { return 0 }

// FuzzHandleMessage drives a session with two arbitrary client messages.
// With resign set, a pusher:subscribe or pusher:signin among them first
// gets the correct HMAC auth for its fuzzer-chosen channel, channel_data
// or user_data (as FuzzVerifyRequest re-signs its queries), so the fuzzer
// explores what lies behind the signature check: presence channel_data,
// sign-in user_data and watchlists, and a presence join that takes its
// member from the signed-in user.
//
// Invariants: no panic; everything sent is a JSON object with an event
// (what every Pusher client parses); the session still answers a ping
// unless it closed; a signed-in user has a non-empty, bounded id and a
// watchlist within max_watchlist_size; every presence member has a
// non-empty id of at most 128 bytes and user_info within
// max_presence_member_bytes.
//
// The re-signed seeds are known-bad inputs: user_info over the limit
// through sign-in (a presence join without channel_data takes the member
// from the signed-in user), a numeric id with a watchlist over the limit,
// a 129-byte user_id, user_info over the limit in channel_data.
func FuzzHandleMessage(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"pusher:subscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"app-key:00\"}"}`,
		`{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"app-key:x","channel_data":"{\"user_id\":1e400}"}}`,
		`{"event":"pusher:subscribe","data":{"channel":"#server-to-user-1"}}`,
		`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:signin","data":{"auth":"app-key:","user_data":"{\"id\":\"\"}"}}`,
		`{"event":"client-x","channel":"private-a","data":{"deep":[[[[[[[[]]]]]]]]}}`,
		`{"event":"client-x","channel":"news","data":"\ud800"}`,
		`{"event":"pusher_internal:member_added"}`,
		`{"event":1}`, `{"event":"x","data":`, `[]`, `null`, "\x00", `{"event":"pusher:subscribe","data":null}`,
		`{"event":"pusher:subscribe","data":{"channel":"` + string(make([]byte, 300)) + `"}}`,
	} {
		f.Add([]byte(s), []byte(`{"event":"pusher:ping","data":{}}`), false)
	}
	signinThenPresence := func(userData, channelData string) {
		ud, _ := json.Marshal(map[string]string{"user_data": userData})
		cd, _ := json.Marshal(map[string]string{"channel": "presence-f", "channel_data": channelData})
		f.Add([]byte(`{"event":"pusher:signin","data":`+string(ud)+`}`), []byte(`{"event":"pusher:subscribe","data":`+string(cd)+`}`), true)
	}
	signinThenPresence(`{"id":"u","user_info":{"name":"n"},"watchlist":["a","b"]}`, "")
	signinThenPresence(`{"id":"u","user_info":"`+strings.Repeat("x", 2000)+`"}`, "")
	signinThenPresence(`{"id":42,"watchlist":[`+strings.Repeat(`"w",`, 150)+`"w"]}`, `{"user_id":"m","user_info":null}`)
	signinThenPresence(`{"id":"u"}`, `{"user_id":"`+strings.Repeat("i", 129)+`"}`)
	signinThenPresence(`{"id":"u"}`, `{"user_id":7,"user_info":{"k":"`+strings.Repeat("v", 1100)+`"}}`)

	e := newEnv(f, nil) // one server for every input; f's cleanups stop it
	f.Fuzz(func(t *testing.T, first, second []byte, resign bool) {
		c := &memConn{}
		ss := e.srv.newSession(e.app, c)
		defer ss.HandleClose(transport.CloseInfo{})
		for _, msg := range [][]byte{first, second} {
			if resign {
				msg = resigned(ss.id, msg)
			}
			ss.HandleMessage(msg, false)
		}
		checkSession(t, e, ss, first, second)
		ss.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`), false)
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.sent {
			var v struct {
				Event string `json:"event"`
			}
			if err := json.Unmarshal(m, &v); err != nil || v.Event == "" {
				t.Fatalf("sent %q for input %.200q, %.200q", m, first, second)
			}
		}
		if last := c.sent[len(c.sent)-1]; string(last) != string(pongMessage) && c.closed == 0 {
			t.Fatalf("the session stopped answering after %.200q, %.200q: last sent %q", first, second, last)
		}
	})
}

// resigned returns msg with the correct auth when it is a pusher:subscribe
// to a private or presence channel or a pusher:signin, and msg unchanged
// otherwise. The data is re-encoded as an object; channel, channel_data
// and user_data stay exactly as the fuzzer chose them.
func resigned(socketID string, msg []byte) []byte {
	env, err := DecodeEnvelope(msg)
	if err != nil {
		return msg
	}
	var data any
	switch env.Event {
	case "pusher:subscribe":
		var d subscribeData
		if decodeData(env.Data, &d) != nil {
			return msg
		}
		if kind := ClassifyChannel(d.Channel); kind.NeedsAuth() {
			data := ""
			if kind.Kind == Presence {
				data = d.ChannelData
			}
			d.Auth = pushersign.ChannelAuth("app-key", "app-secret", socketID, d.Channel, data)
		}
		data = d
	case "pusher:signin":
		var d signinData
		if decodeData(env.Data, &d) != nil {
			return msg
		}
		d.Auth = pushersign.UserAuth("app-key", "app-secret", socketID, d.UserData)
		data = d
	default:
		return msg
	}
	b, err := json.Marshal(map[string]any{"event": env.Event, "data": data})
	if err != nil {
		return msg
	}
	return b
}

// checkSession asserts the bounds that sign-in and presence joins promise,
// whatever the client sent.
func checkSession(t *testing.T, e *testEnv, ss *session, first, second []byte) {
	t.Helper()
	limits := e.app.Limits
	ss.mu.Lock()
	user := ss.user
	var presence []string
	for _, sub := range ss.subs.list() {
		if sub.member != "" {
			presence = append(presence, sub.name)
		}
	}
	ss.mu.Unlock()
	if user != nil {
		// The id names the channel #server-to-user-<id>, at most 300 bytes.
		if user.id == "" || len(user.id) > 300-len(ServerToUserPrefix) {
			t.Fatalf("signed in with id %q after %.200q, %.200q", user.id, first, second)
		}
		if len(user.watchlist) > limits.MaxWatchlistSize {
			t.Fatalf("watchlist of %d ids (limit %d) after %.200q, %.200q", len(user.watchlist), limits.MaxWatchlistSize, first, second)
		}
	}
	for _, name := range presence {
		members, err := e.srv.opts.Hub.PresenceMembers(context.Background(), e.app.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.UserID == "" || len(m.UserID) > 128 {
				t.Fatalf("presence member id %q on %s after %.200q, %.200q", m.UserID, name, first, second)
			}
			if len(m.Info) > limits.MaxPresenceMemberBytes {
				t.Fatalf("presence member %q with %d bytes of user_info (limit %d) on %s after %.200q, %.200q",
					m.UserID, len(m.Info), limits.MaxPresenceMemberBytes, name, first, second)
			}
		}
	}
}

// FuzzDecodeEnvelope checks the envelope decoder alone.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{`{"event":"a","channel":"b","data":{}}`, `{"event":""}`, `{`, `{"event":"a","data":"{\"x\":"}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeEnvelope(data)
		if err == nil && env.Event == "" {
			t.Fatal("accepted an envelope without an event")
		}
		var d subscribeData
		_ = decodeData(env.Data, &d)
	})
}

// FuzzScanEnvelope checks the client-event fast path against the decoder
// it stands in for: whatever scanEnvelope accepts, DecodeEnvelope accepts
// with the same event, channel and data. The seeds are near misses the
// scan must decline: escapes, non-ASCII names, other keys and letter
// cases, duplicate keys, trailing data, bad numbers and literals,
// unterminated strings, deep nesting.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"event":"client-a","channel":"private-b","data":{"x":[1,-2.5e+3,true,false,null,"s\u00e9\n"]}}`,
		` {"event":"client-a","channel":"private-b"} `,
		`{"event":"client-\u0061","channel":"private-b","data":{}}`,
		`{"event":"client-é","channel":"private-b","data":1}`,
		`{"Event":"client-a","channel":"private-b","data":1}`,
		`{"event":"client-a","event":"client-b","data":1,"data":2}`,
		`{"event":"client-a","other":1}`,
		`{"event":"client-a","data":01}`,
		`{"event":"client-a","data":1.}`,
		`{"event":"client-a","data":-}`,
		`{"event":"client-a","data":tru}`,
		`{"event":"client-a","data":"\x"}`,
		`{"event":"client-a","data":"\u12"}`,
		`{"event":"client-a","data":{"a":1,}}`,
		`{"event":"client-a","data":[1,]}`,
		`{"event":"client-a","data":"x}`,
		`{"event":"client-a"}x`,
		`{"event":"client-a",}`,
		`{"event":null,"channel":"c"}`,
		`{"event":""}`,
		"{\"event\":\"client-a\",\"data\":\"\xff\"}",
		"{\"event\":\"client-a\",\"data\":\"\x01\"}",
		`{"event":"client-a","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, ok := scanEnvelope(data)
		env, err := DecodeEnvelope(data)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("scan accepted %q, the decoder refused it: %v", data, err)
		}
		if string(raw.event) != env.Event || string(raw.channel) != env.Channel ||
			string(raw.data) != string(env.Data) || (raw.data == nil) != (env.Data == nil) {
			t.Fatalf("scan of %q gave %q %q %q, the decoder %q %q %q",
				data, raw.event, raw.channel, raw.data, env.Event, env.Channel, env.Data)
		}
	})
}
