package pusher

import "testing"

// The fast path must actually be taken for what clients send, and
// declined for the near misses whose decoding it cannot reproduce
// byte for byte (FuzzScanEnvelope checks that what it accepts agrees).
func TestScanEnvelopeTakesTheUsualShapeOnly(t *testing.T) {
	raw, ok := scanEnvelope([]byte(` {"event":"client-move", "channel" : "private-a","data":{"x":[1,-2.5e+3,true,null,"s\u00e9"]}}` + "\n"))
	if !ok || string(raw.event) != "client-move" || string(raw.channel) != "private-a" ||
		string(raw.data) != `{"x":[1,-2.5e+3,true,null,"s\u00e9"]}` {
		t.Fatalf("usual client event: ok=%v %q %q %q", ok, raw.event, raw.channel, raw.data)
	}
	if raw, ok := scanEnvelope([]byte(`{"event":"client-a","channel":"private-a"}`)); !ok || raw.data != nil {
		t.Fatalf("no data: ok=%v data=%q", ok, raw.data)
	}
	for _, s := range []string{
		`{"event":"client-\u0061","channel":"private-b"}`,
		`{"event":"client-é","channel":"private-b"}`,
		`{"EVENT":"client-a","channel":"private-b"}`,
		`{"event":"client-a","channel":"private-b","extra":1}`,
		`{"event":"client-a","channel":null}`,
		`{"event":"","channel":"private-b"}`,
		`{"event":"client-a","data":01}`,
		`{"event":"client-a","data":[1,]}`,
		`{"event":"client-a"} {}`,
		"{\"event\":\"client-a\",\"data\":\"\x01\"}",
	} {
		if _, ok := scanEnvelope([]byte(s)); ok {
			t.Errorf("scan accepted %q", s)
		}
	}
}
