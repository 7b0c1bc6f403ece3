package pusher

import (
	"bytes"
	"encoding/json"
	"testing"
)

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

// The presence frames built by hand are byte for byte what the
// encoding/json construction they replace made, for any member.
func FuzzMemberFrames(f *testing.F) {
	for _, s := range [][2]string{
		{"42", `{"name":"Ann"}`}, {"u<1>&", `{"a":"<b>"}`}, {"é", `{ "a" : 1 }`}, {"a\"b\\c\n", `"\u2028"`},
		{"x", ""}, {"\xff", `[1,2]`}, {"ann", `{"name":"A B\\" c","n":[1, 2]}`}, {"id", "{\"a\":\"\xe2\x80\xa8\"}"},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, id string, info []byte) {
		if len(info) > 0 && !json.Valid(info) {
			return
		}
		info = bytes.TrimSpace(info)
		added := map[string]any{"user_id": id}
		if len(info) > 0 {
			added["user_info"] = json.RawMessage(info)
		}
		want := newEvent("pusher_internal:member_added").channel("presence-x").dataJSON(added).bytes()
		if got := memberAdded("presence-x", id, info); string(got) != string(want) {
			t.Fatalf("member_added(%q, %q) = %s, want %s", id, info, got, want)
		}
		want = newEvent("pusher_internal:member_removed").channel("presence-x").dataJSON(map[string]string{"user_id": id}).bytes()
		if got := memberRemoved("presence-x", id); string(got) != string(want) {
			t.Fatalf("member_removed(%q) = %s, want %s", id, got, want)
		}
	})
}

// decodeSubscribeData agrees with decodeData, errors included.
func FuzzDecodeSubscribeData(f *testing.F) {
	for _, s := range []string{
		`{"channel":"private-a","auth":"k:00","channel_data":"{\"user_id\":\"1\"}"}`, `{"Channel":"a"}`,
		`{"channel":null}`, `{"channel":1}`, `"{\"channel\":\"a\"}"`, `{"channel":"a","x":1}`, `{"channel":"\u00e9"}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gerr := decodeSubscribeData(raw)
		var want subscribeData
		werr := decodeData(raw, &want)
		if (gerr == nil) != (werr == nil) || (werr == nil && got != want) {
			t.Fatalf("decodeSubscribeData(%q) = %+v, %v; decodeData %+v, %v", raw, got, gerr, want, werr)
		}
	})
}

// parseChannelData agrees with json.Unmarshal, errors included.
func FuzzParseChannelData(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"1","user_info":{"name":"Ann"}}`, ` {"user_id":10} `, "\u00a0{\"user_id\":1}", `{"User_id":"1"}`,
		`{"user_id":"1","x":2}`, `{"user_id":null}`, `{"user_id":"\u0031"}`, `{"user_id":"1"`, `[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, gerr := parseChannelData(raw)
		var want channelData
		werr := json.Unmarshal([]byte(raw), &want)
		if (gerr == nil) != (werr == nil) || (werr == nil && (string(got.UserID) != string(want.UserID) ||
			string(got.UserInfo) != string(want.UserInfo) || (got.UserInfo == nil) != (want.UserInfo == nil))) {
			t.Fatalf("parseChannelData(%q) = %q %q, %v; json %q %q, %v", raw, got.UserID, got.UserInfo, gerr, want.UserID, want.UserInfo, werr)
		}
		gid, gok := userIDString(got.UserID)
		var n json.Number
		wok := false
		wid := ""
		if r := bytes.TrimSpace(want.UserID); len(r) > 0 && r[0] == '"' {
			wok = json.Unmarshal(r, &wid) == nil && wid != ""
		} else if len(r) > 0 && json.Unmarshal(r, &n) == nil {
			wid, wok = n.String(), true
		}
		if gerr == nil && (gid != wid || gok != wok) {
			t.Fatalf("userIDString(%q) = %q %v, want %q %v", got.UserID, gid, gok, wid, wok)
		}
	})
}
