package pusher

import (
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

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

// FuzzHandleMessage drives a session with arbitrary client messages: it
// must never panic, and everything it sends must be a JSON object with an
// event (what every Pusher client parses).
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
		f.Add([]byte(s))
	}
	e := newEnv(f, nil) // one server for every input; f's cleanups stop it
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &memConn{}
		ss := e.srv.newSession(e.app, c)
		ss.HandleMessage(data, false)
		ss.HandleMessage([]byte(`{"event":"pusher:ping","data":{}}`), false)
		ss.HandleClose(transport.CloseInfo{})
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.sent {
			var v struct {
				Event string `json:"event"`
			}
			if err := json.Unmarshal(m, &v); err != nil || v.Event == "" {
				t.Fatalf("sent %q for input %q", m, data)
			}
		}
		if last := c.sent[len(c.sent)-1]; string(last) != string(pongMessage) && c.closed == 0 {
			t.Fatalf("the session stopped answering after %q: last sent %q", data, last)
		}
	})
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
