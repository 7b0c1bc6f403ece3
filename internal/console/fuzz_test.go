package console

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// FuzzDecodePublish: the publish form's body never panics, and what it
// accepts is a well-formed request whose Damon document is valid JSON.
//
//	go test -run '^$' -fuzz FuzzDecodePublish -fuzztime 30s ./internal/console/
func FuzzDecodePublish(f *testing.F) {
	for _, seed := range []string{
		`{"protocol":"pusher","app":"app-id","channel":"c","event":"e","data":"x"}`,
		`{"protocol":"damon","group":"g","event":"E","data":{"n":1}}`,
		``, `null`, `[]`, `{}`, `{"protocol":"pusher"}`,
		`{"protocol":"pusher","app":"a","channel":"c","event":"e","data":{"not":"a string"}}`,
		`{"protocol":"pusher","app":"a","channel":"c","event":"pusher:x"}`,
		`{"protocol":"damon","group":"g","event":"E","app":"a"}`,
		`{"protocol":"damon","group":"g","event":"E"} {"again":1}`,
		`{"protocol":"damon","group":"g\u0000","event":"E"}`,
		`{"protocol":"pusher","app":"a","channel":"c","event":"e","extra":1}`,
		`{"protocol":"smtp","event":"e"}`,
		"{\"protocol\":\"damon\",\"group\":\"\xff\",\"event\":\"E\"}",
		`{"protocol":"damon","group":"g","event":"E","data":`,
		`{"protocol":"pusher","app":"a","channel":"c","event":"` + strings.Repeat("e", 201) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodePublish(body)
		if err != nil {
			return
		}
		for _, name := range []string{req.Event, req.App, req.Channel, req.Group} {
			if len(name) > maxNameBytes || !utf8.ValidString(name) {
				t.Fatalf("accepted name %q", name)
			}
		}
		switch req.Protocol {
		case "pusher":
			_ = req.PusherData()
		case "damon":
			if doc := req.DamonDocument(); !json.Valid(doc) {
				t.Fatalf("Damon document %s is not JSON", doc)
			}
		default:
			t.Fatalf("accepted protocol %q", req.Protocol)
		}
	})
}

// FuzzParseFilter: any query string parses or is refused, never panics;
// an accepted filter has bounded, printable values.
func FuzzParseFilter(f *testing.F) {
	for _, seed := range []string{
		"", "app=app-id&channel=private-*", "event=a*b", "channel=a&channel=b",
		"protocol=%00", "app=%ff", "channel=" + strings.Repeat("x", 300), "event=*", "%zz=1", "channel=a;b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			return
		}
		for _, v := range []string{flt.App, flt.Channel, flt.Event, flt.Protocol} {
			if len(v) > maxFilterBytes || !utf8.ValidString(v) || strings.Count(v, "*") > 1 {
				t.Fatalf("accepted %q", v)
			}
		}
		ev := Event{App: "a", Channel: "c", Event: "e", Protocol: "pusher"}
		_ = flt.Match(&ev)
	})
}

// FuzzDescribe: any payload a protocol publishes (client events carry
// client bytes) is shown as valid UTF-8 of bounded size.
func FuzzDescribe(f *testing.F) {
	for _, seed := range []string{
		`{"event":"e","channel":"c","data":"{\"a\":1}"}`,
		"\x00\x00\x00\x00\x07{\"op\":0,\"event\":\"E\",\"id\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\"}",
		"\x00\x01", `{"res":"v1.channels.message","data":{"x":[1,2]}}`, `{"event":1}`, "\xff\xfe", `"just a string"`,
	} {
		f.Add([]byte(seed), false)
	}
	f.Add([]byte{0x0a, 0x03, 0x01, 0x02, 0x03}, true)
	f.Fuzz(func(t *testing.T, payload []byte, binary bool) {
		ev := describe("x", engine.Publication{Namespace: "n", Channel: "c", Payload: payload, Binary: binary})
		if !utf8.ValidString(ev.Data) || !utf8.ValidString(ev.Event) || len(ev.Data) > maxShownData+len("…") || ev.Bytes != len(payload) {
			t.Fatalf("shown %+v", ev)
		}
		if _, err := json.Marshal(&ev); err != nil {
			t.Fatal(err)
		}
	})
}
