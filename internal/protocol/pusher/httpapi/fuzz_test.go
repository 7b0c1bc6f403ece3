package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher"
	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// FuzzVerifyRequest drives the whole handler (query parsing, signature
// check, body decoding, validation) with arbitrary method, path tail,
// query and body. When resign is set the query is first signed correctly,
// so that the fuzzer also explores what lies behind authentication.
//
// Invariants: no panic; only the documented statuses; every non-204
// answer is a JSON object and every error has a message; a 200 implies a
// valid signature, fresh timestamp and matching body_md5; and whatever
// reaches the backend obeys the validation rules.
//
// The seed corpus in testdata/fuzz/FuzzVerifyRequest holds known-bad
// inputs: duplicate and case-duplicate parameters, missing auth fields,
// huge and negative timestamps, non-hex signatures, broken JSON.
func FuzzVerifyRequest(f *testing.F) {
	f.Add("POST", "events", "", []byte(`{"name":"e","channels":["a","presence-b"],"data":"x","info":"user_count"}`), true)
	f.Add("POST", "batch_events", "", []byte(`{"batch":[{"name":"e","channel":"a","data":"x","info":"subscription_count"}]}`), true)
	f.Add("GET", "channels", "filter_by_prefix=presence-&info=user_count", []byte(nil), true)
	f.Add("GET", "channels/cache-a", "info=cache", []byte(nil), true)
	f.Add("GET", "channels/presence-a/users", "", []byte(nil), true)
	f.Add("POST", "users/1/terminate_connections", "", []byte(`{}`), true)
	f.Add("POST", "events", "name=e&channel=a&data=x", []byte(nil), true)
	f.Add("POST", "events", "auth_key=key1&auth_timestamp=1353088179&auth_version=1.0&auth_signature=00", []byte(`{}`), false)

	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, method, sub, rawQuery string, body []byte, resign bool) {
		fake := newFakeBackend()
		fake.stats["presence-b"] = engineStats(2, 1)
		fake.cache["cache-a"] = cacheEntry{msg: `{"event":"e","channel":"cache-a","data":"x"}`, ttl: 1}
		api := New(fake, Options{Now: func() time.Time { return testNow }, Logger: discard, MaxBodyBytes: 4096})

		path := "/apps/1/" + sub
		if resign {
			q, _ := url.ParseQuery(rawQuery) // keeps the pairs that parse
			pushersign.SignRESTQuery(testKey, testSecret, method, path, q, body, testNow)
			rawQuery = q.Encode()
		}
		r := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
		r.Method = method
		r.URL = &url.URL{Path: path, RawQuery: rawQuery}
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)

		switch w.Code {
		case 200, 204, 400, 401, 403, 404, 405, 413:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if w.Code != 204 {
			var obj map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &obj); err != nil {
				t.Fatalf("status %d body %q is not a JSON object", w.Code, w.Body.String())
			}
			if msg, _ := obj["error"].(string); w.Code >= 400 && msg == "" {
				t.Fatalf("status %d without error message", w.Code)
			}
		}
		if w.Code != 200 {
			if n := len(fake.triggered()); n != 0 {
				t.Fatalf("status %d but %d events triggered", w.Code, n)
			}
			return
		}
		checkAuthentic(t, r, body)
		for _, ev := range fake.triggered() {
			checkEvent(t, ev)
		}
	})
}

// checkAuthentic re-verifies an accepted request independently of
// verifyRequest, with the primitives of pushersign.
func checkAuthentic(t *testing.T, r *http.Request, body []byte) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		t.Fatalf("accepted a malformed query %q: %v", r.URL.RawQuery, err)
	}
	seen := map[string]bool{}
	for k, vs := range q {
		if len(vs) != 1 || seen[strings.ToLower(k)] {
			t.Fatalf("accepted duplicate parameter %q in %q", k, r.URL.RawQuery)
		}
		seen[strings.ToLower(k)] = true
	}
	ok := false
	for _, p := range signedPaths(r) {
		ok = ok || pushersign.Equal(pushersign.RESTSignature(testSecret, r.Method, p, q), q.Get("auth_signature"))
	}
	if !ok {
		t.Fatalf("accepted a bad signature: %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	}
	ts, err := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
	if err != nil || ts < testNow.Unix()-600 || ts > testNow.Unix()+600 {
		t.Fatalf("accepted auth_timestamp %q", q.Get("auth_timestamp"))
	}
	if q.Get("auth_key") != testKey || q.Get("auth_version") != "1.0" {
		t.Fatalf("accepted auth_key %q auth_version %q", q.Get("auth_key"), q.Get("auth_version"))
	}
	if len(body) > 0 && !strings.EqualFold(q.Get("body_md5"), pushersign.BodyMD5(body)) {
		t.Fatalf("accepted body_md5 %q for body %q", q.Get("body_md5"), body)
	}
}

// checkEvent asserts that a triggered event obeys app 1's limits.
func checkEvent(t *testing.T, ev pusher.TriggerEvent) {
	if ev.Name == "" || len(ev.Name) > 200 || len(ev.Data) > 10240 {
		t.Fatalf("triggered event out of bounds: name %q, %d data bytes", ev.Name, len(ev.Data))
	}
	if len(ev.Channels) == 0 || len(ev.Channels) > 100 {
		t.Fatalf("triggered to %d channels", len(ev.Channels))
	}
	seen := map[string]bool{}
	for _, ch := range ev.Channels {
		if seen[ch] {
			t.Fatalf("channel %q twice", ch)
		}
		seen[ch] = true
		if err := pusher.ValidateChannelName(ch, 200, true); err != nil {
			t.Fatalf("triggered to invalid channel: %v", err)
		}
		if strings.HasPrefix(ch, "#") && !strings.HasPrefix(ch, pusher.ServerToUserPrefix) {
			t.Fatalf("triggered to reserved channel %q", ch)
		}
	}
	if ev.SocketID != "" && !validSocketID(ev.SocketID) {
		t.Fatalf("triggered with socket_id %q", ev.SocketID)
	}
}

// FuzzPublishBodyScan: the jsonscan fast paths of the publish endpoints
// agree with the encoding/json decoding they stand in for, whenever they
// accept. Seeds are near misses: differently cased or unknown keys,
// escapes, nulls, trailing data.
func FuzzPublishBodyScan(f *testing.F) {
	for _, s := range []string{
		`{"name":"e","channels":["a","b"],"data":"{\"x\":1}","socket_id":"1.2","info":"user_count"}`,
		`{"batch":[{"name":"e","channel":"a","data":"d"},{"name":"\u0065","channel":"b","data":{"o":1}}]}`,
		`{"Name":"e"}`, `{"name":"e","extra":1}`, `{"channels":["a",null]}`, `{"channels":["\u00e9"]}`,
		`{"batch":null}`, `{"batch":[]}x`, `{"batch":[1]}`, `{"data":"\ud800"}`, "{\"data\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast rawEvent
		if scanRawEvent(b, &fast) {
			var slow rawEvent
			if aerr := decodeObject(b, &slow, "body"); aerr != nil {
				t.Fatalf("scan accepted %q, decodeObject: %v", b, aerr)
			}
			if fmt.Sprint(fast) != fmt.Sprint(slow) {
				t.Fatalf("scan of %q: %q, decodeObject: %q", b, fast, slow)
			}
			for _, v := range []json.RawMessage{fast.Name, fast.Data, fast.Channel} {
				got, gerr := jsonString(v)
				var want string
				werr := json.Unmarshal(v, &want)
				if got != want || (gerr == nil) != (werr == nil) {
					t.Fatalf("jsonString(%q) = %q, %v; encoding/json %q, %v", v, got, gerr, want, werr)
				}
			}
			got, gerr := jsonStrings(fast.Channels)
			var want []string
			werr := json.Unmarshal(fast.Channels, &want)
			if fmt.Sprint(got) != fmt.Sprint(want) || (gerr == nil) != (werr == nil) {
				t.Fatalf("jsonStrings(%q) = %q, %v; encoding/json %q, %v", fast.Channels, got, gerr, want, werr)
			}
		}
		if items, ok := scanBatch(b); ok {
			var body struct {
				Batch []json.RawMessage `json:"batch"`
			}
			if aerr := decodeObject(b, &body, "body"); aerr != nil || fmt.Sprint(items) != fmt.Sprint(body.Batch) {
				t.Fatalf("scanBatch(%q) = %q; decodeObject %q, %v", b, items, body.Batch, aerr)
			}
		}
	})
}
