package pusher

import (
	"bytes"
	"encoding/json"
)

// Presence frames without encoding/json for the usual member: a user id of
// plain ASCII and user_info with nothing encoding/json would rewrite. The
// data must stay byte for byte what json.Marshal of the map made before
// (HTML-escaped, compacted user_info), so anything else takes that road.
//
// BenchmarkMemberFrames (go test -run '^$' -bench MemberFrames -benchmem
// -count 4 ./internal/protocol/pusher/), member_added with 40 bytes of
// user_info: dataJSON of the map 2.5-3.1 µs and 13 allocs, memberAdded
// 0.65-1.06 µs and 2 allocs (ranges over 4 runs on the shared, loaded
// 2-core machine).

// memberAdded is pusher_internal:member_added for m on channel.
func memberAdded(channel, userID string, info []byte) []byte {
	if !jsonSafeID(userID) || !jsonSafeInfo(info) {
		added := map[string]any{"user_id": userID}
		if len(info) > 0 {
			added["user_info"] = json.RawMessage(info)
		}
		return newEvent("pusher_internal:member_added").channel(channel).dataJSON(added).bytes()
	}
	inner := make([]byte, 0, len(`{"user_id":"","user_info":}`)+len(userID)+len(info))
	inner = append(inner, `{"user_id":"`...)
	inner = append(inner, userID...)
	inner = append(inner, '"')
	if len(info) > 0 {
		inner = append(inner, `,"user_info":`...)
		inner = append(inner, info...)
	}
	inner = append(inner, '}')
	return memberFrame("pusher_internal:member_added", channel, inner)
}

// memberRemoved is pusher_internal:member_removed for userID on channel.
func memberRemoved(channel, userID string) []byte {
	if !jsonSafeID(userID) {
		return newEvent("pusher_internal:member_removed").channel(channel).
			dataJSON(map[string]string{"user_id": userID}).bytes()
	}
	var inner [160]byte // user ids are at most 128 bytes
	b := append(inner[:0], `{"user_id":"`...)
	b = append(b, userID...)
	b = append(b, `"}`...)
	return memberFrame("pusher_internal:member_removed", channel, b)
}

// memberFrame is {"event":..,"channel":..,"data":"<inner, escaped>"} in
// one allocation sized for inner's quotes escaped.
func memberFrame(event, channel string, inner []byte) []byte {
	n := len(`{"event":"","channel":"","data":""}`) + len(event) + len(channel) + len(inner) + bytes.Count(inner, []byte{'"'})
	b := make([]byte, 0, n)
	b = append(b, `{"event":`...)
	b = appendJSONString(b, event)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, inner)
	return append(b, '}')
}

// jsonSafeID: json.Marshal writes s between quotes unchanged (printable
// ASCII without the characters it escapes).
func jsonSafeID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// jsonSafeInfo: json.Marshal of info as a RawMessage is info unchanged.
// It compacts (drops whitespace outside strings) and escapes <, >, & and
// U+2028/2029 (whose UTF-8 starts with 0xE2). info is valid JSON:
// channel_data was decoded.
func jsonSafeInfo(info []byte) bool {
	inString, escaped := false, false
	for _, c := range info {
		switch {
		case c == '<' || c == '>' || c == '&' || c == 0xE2:
			return false
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}
