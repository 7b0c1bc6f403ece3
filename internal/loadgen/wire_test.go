package loadgen

import (
	"encoding/json"
	"strconv"
	"testing"
)

func TestStampRoundTrip(t *testing.T) {
	for _, pad := range []int{0, 10, 200} {
		b := appendStamp(nil, 3, 42, 1234567890123, pad)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("pad %d: stamp is not JSON: %s", pad, b)
		}
		if pad > 40 && (len(b) < pad-2 || len(b) > pad+2) {
			t.Fatalf("pad %d: len %d", pad, len(b))
		}
		step, seq, ns, ok := parseStamp(b)
		if !ok || step != 3 || seq != 42 || ns != 1234567890123 {
			t.Fatalf("pad %d: parse = %d %d %d %v", pad, step, seq, ns, ok)
		}
	}
}

// The stamp must be found however the server forwards event data.
func TestParseStampInServerFrames(t *testing.T) {
	stamp := string(appendStamp(nil, 1, 7, 99, 0))
	quoted := strconv.Quote(stamp)
	frames := map[string]string{
		"data as string (Pusher double encoding)": `{"event":"sb-bench","channel":"c","data":` + quoted + `}`,
		"data as object":                  `{"event":"client-sb-bench","channel":"c","data":` + stamp + `}`,
		"spaces":                          `{"event": "x", "data": {"sbt": [1, 7, 99]}}`,
		"presence member_added":           `{"event":"pusher_internal:member_added","channel":"presence-sb-0","data":"{\"user_id\":\"sbu-1-7\",\"user_info\":{\"sbt\":[1,7,99]}}"}`,
		"false hit before the real stamp": `{"event":"x","channel":"sbt-chan","data":"{\"sbt\":[1,7,99]}"}`,
	}
	for name, f := range frames {
		step, seq, ns, ok := parseStamp([]byte(f))
		if !ok || step != 1 || seq != 7 || ns != 99 {
			t.Errorf("%s: got %d %d %d %v", name, step, seq, ns, ok)
		}
	}
	for _, bad := range []string{`{}`, `{"sbt":[1,2]}`, `{"sbt":"x"}`, `sbt`, `{"sbt":[1,,2,3]}`} {
		if _, _, _, ok := parseStamp([]byte(bad)); ok {
			t.Errorf("parsed a stamp from %q", bad)
		}
	}
}

func TestTopLevelString(t *testing.T) {
	msg := []byte(`{"data":"{\"event\":\"inner\",\"channel\":\"no\"}","nested":{"event":"deep"},"event":"pusher:ping","channel":"c-1"}`)
	if ev, ok := topLevelString(msg, "event"); !ok || string(ev) != "pusher:ping" {
		t.Fatalf("event = %q %v", ev, ok)
	}
	if ch, ok := topLevelString(msg, "channel"); !ok || string(ch) != "c-1" {
		t.Fatalf("channel = %q %v", ch, ok)
	}
	if _, ok := topLevelString([]byte(`{"event":12}`), "event"); ok {
		t.Fatal("non-string value accepted")
	}
	if _, ok := topLevelString([]byte(`{"event":"unterminated`), "event"); ok {
		t.Fatal("unterminated string accepted")
	}
	if ev, ok := topLevelString([]byte(` { "event" : "a\"b" } `), "event"); !ok || string(ev) != `a\"b` {
		t.Fatalf("escaped = %q %v", ev, ok)
	}
}

func TestProtocolMessages(t *testing.T) {
	var sub struct {
		Event string            `json:"event"`
		Data  map[string]string `json:"data"`
	}
	if err := json.Unmarshal(subscribeMsg("presence-x", "k:s", `{"user_id":"1"}`), &sub); err != nil {
		t.Fatal(err)
	}
	if sub.Event != "pusher:subscribe" || sub.Data["channel"] != "presence-x" || sub.Data["auth"] != "k:s" || sub.Data["channel_data"] != `{"user_id":"1"}` {
		t.Fatalf("subscribe = %+v", sub)
	}
	sub.Data = nil
	if err := json.Unmarshal(subscribeMsg("public", "", ""), &sub); err != nil {
		t.Fatal(err)
	}
	if _, has := sub.Data["channel_data"]; has {
		t.Fatal("empty channel_data sent")
	}
	var ce struct {
		Event   string          `json:"event"`
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(clientEventMsg(nil, "private-a", 0, 5, 6, 0), &ce); err != nil {
		t.Fatal(err)
	}
	if ce.Event != benchClientEvent || ce.Channel != "private-a" || ce.Data[0] != '{' {
		t.Fatalf("client event = %+v", ce)
	}
	var ev envelope
	_ = json.Unmarshal([]byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}`), &ev)
	var ed establishedData
	if err := ev.dataObject(&ed); err != nil || ed.SocketID != "1.2" || ed.ActivityTimeout != 30 {
		t.Fatalf("established = %+v %v", ed, err)
	}
	_ = json.Unmarshal([]byte(`{"event":"pusher:error","data":{"code":4001,"message":"nope"}}`), &ev)
	var er errorData
	if err := ev.dataObject(&er); err != nil || er.String() != "4001 nope" {
		t.Fatalf("error = %q %v", er.String(), err)
	}
}

func TestParseJoinerID(t *testing.T) {
	seq, ok := parseJoinerID([]byte(`{"event":"pusher_internal:member_removed","channel":"presence-sb-1","data":"{\"user_id\":\"sbu-0-1234\"}"}`))
	if !ok || seq != 1234 {
		t.Fatalf("seq = %d %v", seq, ok)
	}
	if _, ok := parseJoinerID([]byte(`{"data":"{\"user_id\":\"w-3\"}"}`)); ok {
		t.Fatal("watcher id parsed as joiner")
	}
}
