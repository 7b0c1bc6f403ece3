package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/jsonscan"
)

// The publish endpoints read their bodies with jsonscan first: it finds
// the fields' spans without reflection or copies, and declines anything
// beyond the usual shape (unknown or differently cased keys, escapes in
// names, invalid JSON), which then takes encoding/json and gets the same
// result or error as before. BenchmarkAPIPublish (go test -run '^$' -bench
// APIPublish -benchmem ./internal/protocol/pusher/httpapi/),
// events/1-channel: the whole request went from 40 to 21 allocs with the
// scan, then to 13 with jsonscan.StringValue for the escaped data; the
// table for every step is in docs/performance.md.

// position is where an event sits in a request, for error messages:
// topLevel for /events, i for batch[i].
type position int

const topLevel position = -1

func batchPosition(i int) position { return position(i) }

func (p position) String() string {
	if p == topLevel {
		return ""
	}
	return "batch[" + strconv.Itoa(int(p)) + "]: "
}

// scanRawEvent fills raw from an event object whose keys are all known
// and exactly spelt; false means decode it with decodeObject instead.
// raw's fields are spans of b.
func scanRawEvent(b []byte, raw *rawEvent) bool {
	return jsonscan.Object(bytes.TrimSpace(b), func(key, v []byte) bool {
		switch string(key) {
		case "name":
			raw.Name = v
		case "data":
			raw.Data = v
		case "channels":
			raw.Channels = v
		case "channel":
			raw.Channel = v
		case "socket_id":
			raw.SocketID = v
		case "info":
			raw.Info = v
		default:
			return false
		}
		return true
	})
}

// scanBatch splits {"batch":[...]} into its items' spans; false means
// decode the body the slow way (which also words every error).
func scanBatch(b []byte) ([]json.RawMessage, bool) {
	var batch []byte
	if !jsonscan.Object(bytes.TrimSpace(b), func(key, v []byte) bool {
		if string(key) != "batch" {
			return false
		}
		batch = v
		return true
	}) || batch == nil {
		return nil, false
	}
	items := make([]json.RawMessage, 0, 16)
	if !jsonscan.Array(batch, func(v []byte) bool {
		items = append(items, v)
		return true
	}) {
		return nil, false
	}
	return items, true
}

// jsonString decodes a JSON string; plain ones and ASCII ones with only
// two-character escapes (the usual escaped-JSON data) take jsonscan,
// anything else encoding/json.
func jsonString(v []byte) (string, error) {
	if s, ok := jsonscan.StringValue(v); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// jsonStrings decodes a JSON array of strings the same way.
func jsonStrings(v []byte) ([]string, error) {
	n := 0
	if jsonscan.Array(v, func(e []byte) bool {
		_, ok := jsonscan.PlainString(e)
		n++
		return ok
	}) {
		out := make([]string, 0, n)
		jsonscan.Array(v, func(e []byte) bool {
			s, _ := jsonscan.PlainString(e)
			out = append(out, string(s))
			return true
		})
		return out, nil
	}
	var out []string
	err := json.Unmarshal(v, &out)
	return out, err
}
