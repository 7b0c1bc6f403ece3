package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestTriggerAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		channels   []string
		data       string
		socketID   string
	}{
		{"channels array", `{"name":"e","channels":["a","b"],"data":"x"}`, []string{"a", "b"}, "x", ""},
		{"channel string", `{"name":"e","channel":"a","data":"x"}`, []string{"a"}, "x", ""},
		{"duplicates collapse", `{"name":"e","channels":["a","b","a"],"data":"x"}`, []string{"a", "b"}, "x", ""},
		{"sendToUser", `{"name":"e","channels":["#server-to-user-123"],"data":"x"}`, []string{"#server-to-user-123"}, "x", ""},
		{"every channel type", `{"name":"e","channels":["private-a","presence-b","private-encrypted-c","cache-d","x=@,.;_-"],"data":"x"}`,
			[]string{"private-a", "presence-b", "private-encrypted-c", "cache-d", "x=@,.;_-"}, "x", ""},
		{"socket_id", `{"name":"e","channel":"a","data":"x","socket_id":"123.456"}`, []string{"a"}, "x", "123.456"},
		{"empty socket_id means none", `{"name":"e","channel":"a","data":"x","socket_id":""}`, []string{"a"}, "x", ""},
		{"object data forwarded as JSON", `{"name":"e","channel":"a","data":{"k":[1,2]}}`, []string{"a"}, `{"k":[1,2]}`, ""},
		{"empty data string", `{"name":"e","channel":"a","data":""}`, []string{"a"}, "", ""},
		{"unknown fields ignored", `{"name":"e","channel":"a","data":"x","idempotency_key":"k"}`, []string{"a"}, "x", ""},
		{"data exactly at the limit", `{"name":"e","channel":"a","data":"` + strings.Repeat("d", 10240) + `"}`, []string{"a"}, strings.Repeat("d", 10240), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.post("/apps/1/events", tc.body)
			res.expect(t, 200, "")
			res.jsonEq(t, `{}`)
			evs := h.fake.triggered()
			if len(evs) != 1 {
				t.Fatalf("%d triggers", len(evs))
			}
			ev := evs[0]
			if ev.Name != "e" || ev.Data != tc.data || ev.SocketID != tc.socketID || !reflect.DeepEqual(ev.Channels, tc.channels) {
				t.Fatalf("triggered %+v", ev)
			}
		})
	}
}

func TestTriggerRejected(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("c%d", i))
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"missing name", `{"channels":["a"],"data":"x"}`, 400, `missing event name`},
		{"empty name", `{"name":"","channels":["a"],"data":"x"}`, 400, `missing event name`},
		{"missing data", `{"name":"e","channels":["a"]}`, 400, `missing event data`},
		{"null data", `{"name":"e","channels":["a"],"data":null}`, 400, `missing event data`},
		{"missing channels", `{"name":"e","data":"x"}`, 400, `missing "channels"`},
		{"empty channels", `{"name":"e","channels":[],"data":"x"}`, 400, `"channels" is empty`},
		{"both channel and channels", `{"name":"e","channels":["a"],"channel":"b","data":"x"}`, 400, `not both`},
		{"101 channels", `{"name":"e","channels":[` + strings.Join(many, ",") + `],"data":"x"}`, 400, "101 channels, over the limit of 100"},
		{"bad character", `{"name":"e","channels":["a b"],"data":"x"}`, 400, "invalid character"},
		{"empty channel name", `{"name":"e","channels":[""],"data":"x"}`, 400, "channel name is empty"},
		{"channel name too long", `{"name":"e","channels":["` + strings.Repeat("c", 201) + `"],"data":"x"}`, 400, "201 characters, over the limit of 200"},
		{"reserved # channel", `{"name":"e","channels":["#watchers-1"],"data":"x"}`, 400, "reserved"},
		{"server-to-user without id", `{"name":"e","channels":["#server-to-user-"],"data":"x"}`, 400, "reserved"},
		{"server-to-user bad id", `{"name":"e","channels":["#server-to-user-a/b"],"data":"x"}`, 400, "invalid character"},
		{"event name too long", `{"name":"` + strings.Repeat("n", 201) + `","channels":["a"],"data":"x"}`, 400, "event name is 201 characters, over the limit of 200"},
		{"data too large", `{"name":"e","channels":["a"],"data":"` + strings.Repeat("d", 10241) + `"}`, 413, "event data is 10241 bytes, over the limit of 10240"},
		{"bad socket_id", `{"name":"e","channels":["a"],"data":"x","socket_id":"abc"}`, 400, "socket_id \"abc\""},
		{"socket_id without dot", `{"name":"e","channels":["a"],"data":"x","socket_id":"123"}`, 400, "socket_id"},
		{"socket_id with three parts", `{"name":"e","channels":["a"],"data":"x","socket_id":"1.2.3"}`, 400, "socket_id"},
		{"socket_id not ascii digits", `{"name":"e","channels":["a"],"data":"x","socket_id":"١.٢"}`, 400, "socket_id"},
		{"unknown info", `{"name":"e","channels":["a"],"data":"x","info":"occupied"}`, 400, `unknown info attribute "occupied"`},
		{"malformed JSON", `{"name":"e",`, 400, "not valid JSON"},
		{"array body", `[{"name":"e"}]`, 400, "must be a JSON object"},
		{"trailing data", `{"name":"e","channel":"a","data":"x"}{}`, 400, "data after the JSON object"},
		{"name not a string", `{"name":1,"channels":["a"],"data":"x"}`, 400, `"name" must be a string`},
		{"channels not an array", `{"name":"e","channels":"a","data":"x"}`, 400, `"channels" must be an array`},
		{"channels of numbers", `{"name":"e","channels":[1],"data":"x"}`, 400, `"channels" must be an array`},
		{"channel not a string", `{"name":"e","channel":["a"],"data":"x"}`, 400, `"channel" must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.post("/apps/1/events", tc.body).expect(t, tc.status, tc.want)
			if n := len(h.fake.triggered()); n != 0 {
				t.Fatalf("%d events triggered by a refused request", n)
			}
		})
	}
}

// Limits come from the app; an app built with zero limits gets Pusher's.
func TestTriggerLimitsPerApp(t *testing.T) {
	h := newHarness(t)
	h.fake.apps.ByID("1").Limits.MaxEventBytes = 5
	h.fake.apps.ByID("1").Limits.MaxChannelsPerEvent = 2
	h.post("/apps/1/events", `{"name":"e","channel":"a","data":"123456"}`).expect(t, 413, "over the limit of 5")
	h.post("/apps/1/events", `{"name":"e","channels":["a","b","c"],"data":"1"}`).expect(t, 400, "over the limit of 2")

	body := []byte(`{"name":"e","channel":"a","data":"` + strings.Repeat("d", 10241) + `"}`)
	h.do(signed("POST", "/apps/4/events", nil, body, "key4", "secret4", testNow)).expect(t, 413, "over the limit of 10240")
}

// POST parameters may travel in the signed query string (Pusher allows it).
func TestTriggerQueryString(t *testing.T) {
	h := newHarness(t)
	q := url.Values{"name": {"e"}, "channel": {"a"}, "data": {`{"k":1}`}, "socket_id": {"1.2"}}
	res := h.do(signed("POST", "/apps/1/events", q, nil, testKey, testSecret, testNow))
	res.expect(t, 200, "")
	evs := h.fake.triggered()
	if len(evs) != 1 || evs[0].Name != "e" || evs[0].Data != `{"k":1}` || evs[0].SocketID != "1.2" || evs[0].Channels[0] != "a" {
		t.Fatalf("triggered %+v", evs)
	}

	// channels[] (the documented array form) with one value.
	q = url.Values{"name": {"e"}, "channels[]": {"b"}, "data": {"x"}}
	h.do(signed("POST", "/apps/1/events", q, nil, testKey, testSecret, testNow)).expect(t, 200, "")

	// The body wins over the query where both give a field; the query
	// fills in what the body lacks.
	q = url.Values{"name": {"from-query"}, "info": {"subscription_count"}}
	res = h.do(signed("POST", "/apps/1/events", q, []byte(`{"name":"from-body","channel":"c","data":"x"}`), testKey, testSecret, testNow))
	res.expect(t, 200, "")
	res.jsonEq(t, `{"channels":{"c":{"subscription_count":0}}}`)
	if evs := h.fake.triggered(); evs[len(evs)-1].Name != "from-body" {
		t.Fatalf("name %q", evs[len(evs)-1].Name)
	}

	// Query parameters are signed: adding one afterwards breaks the signature.
	r := signed("POST", "/apps/1/events", url.Values{"name": {"e"}, "channel": {"a"}, "data": {"x"}}, nil, testKey, testSecret, testNow)
	r.URL.RawQuery += "&socket_id=1.1"
	h.do(r).expect(t, 401, "invalid auth_signature")
}

func TestTriggerInfo(t *testing.T) {
	h := newHarness(t)
	h.fake.stats["presence-foo"] = engineStats(51, 42)
	h.fake.stats["bar"] = engineStats(13, 0)
	res := h.post("/apps/1/events", `{"name":"e","channels":["presence-foo","bar","empty"],"data":"x","info":"user_count,subscription_count"}`)
	res.expect(t, 200, "")
	res.jsonEq(t, `{"channels":{"presence-foo":{"user_count":42,"subscription_count":51},"bar":{"subscription_count":13},"empty":{"subscription_count":0}}}`)

	res = h.post("/apps/1/events", `{"name":"e","channels":["presence-foo","bar"],"data":"x","info":"user_count"}`)
	res.jsonEq(t, `{"channels":{"presence-foo":{"user_count":42},"bar":{}}}`)

	// A blank info is no info.
	h.post("/apps/1/events", `{"name":"e","channels":["bar"],"data":"x","info":" , "}`).jsonEq(t, `{}`)
}

func TestBatch(t *testing.T) {
	h := newHarness(t)
	h.fake.stats["presence-foo"] = engineStats(51, 42)
	h.fake.stats["bar"] = engineStats(13, 0)
	res := h.post("/apps/1/batch_events", `{"batch":[{"name":"a","channel":"bar","data":"1"},{"name":"b","channel":"#server-to-user-9","data":"2","socket_id":"1.1"}]}`)
	res.expect(t, 200, "")
	res.jsonEq(t, `{}`)
	evs := h.fake.triggered()
	if len(evs) != 2 || evs[0].Name != "a" || evs[1].Name != "b" || evs[1].SocketID != "1.1" || evs[1].Channels[0] != "#server-to-user-9" {
		t.Fatalf("triggered %+v", evs)
	}

	res = h.post("/apps/1/batch_events", `{"batch":[
		{"name":"a","channel":"presence-foo","data":"1","info":"user_count,subscription_count"},
		{"name":"b","channel":"bar","data":"2"},
		{"name":"c","channel":"bar","data":"3","info":"subscription_count"}]}`)
	res.expect(t, 200, "")
	res.jsonEq(t, `{"batch":[{"user_count":42,"subscription_count":51},{},{"subscription_count":13}]}`)
}

func TestBatchRejected(t *testing.T) {
	item := `{"name":"e","channel":"a","data":"x"}`
	eleven := "[" + strings.TrimSuffix(strings.Repeat(item+",", 11), ",") + "]"
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"missing batch", `{}`, 400, `missing "batch"`},
		{"empty body", ``, 400, "request body is empty"},
		{"batch not an array", `{"batch":{"name":"e"}}`, 400, `"batch" must be an array`},
		{"empty batch", `{"batch":[]}`, 400, `"batch" is empty`},
		{"11 events", `{"batch":` + eleven + `}`, 400, "11 events, over the limit of 10"},
		{"item not an object", `{"batch":["e"]}`, 400, "batch[0]: event must be a JSON object"},
		{"item without channel", `{"batch":[` + item + `,{"name":"e","data":"x"}]}`, 400, `batch[1]: missing "channel"`},
		{"item with channels", `{"batch":[{"name":"e","channels":["a"],"data":"x"}]}`, 400, `batch[0]: batch events take one channel`},
		{"item without name", `{"batch":[{"channel":"a","data":"x"}]}`, 400, `batch[0]: missing event name`},
		{"item bad channel", `{"batch":[` + item + `,{"name":"e","channel":"no spaces","data":"x"}]}`, 400, `batch[1]: channel name "no spaces"`},
		{"item bad socket", `{"batch":[{"name":"e","channel":"a","data":"x","socket_id":"1"}]}`, 400, `batch[0]: socket_id`},
		{"item data too big", `{"batch":[` + item + `,{"name":"e","channel":"a","data":"` + strings.Repeat("d", 10241) + `"}]}`, 413, `batch[1]: event data is 10241 bytes`},
		{"broken JSON", `{"batch":[` + item, 400, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.post("/apps/1/batch_events", tc.body).expect(t, tc.status, tc.want)
			// Validation precedes publishing: nothing of a refused batch goes out.
			if n := len(h.fake.triggered()); n != 0 {
				t.Fatalf("%d events triggered by a refused batch", n)
			}
		})
	}
}

func TestBatchSizeFromApp(t *testing.T) {
	h := newHarness(t)
	h.fake.apps.ByID("1").Limits.MaxBatchSize = 2
	h.post("/apps/1/batch_events", `{"batch":[{"name":"e","channel":"a","data":"x"},{"name":"e","channel":"a","data":"x"},{"name":"e","channel":"a","data":"x"}]}`).
		expect(t, 400, "3 events, over the limit of 2")
}

func TestRequestBodyTooLarge(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = 64 })
	body := `{"name":"e","channel":"a","data":"` + strings.Repeat("d", 100) + `"}`
	h.post("/apps/1/events", body).expect(t, http.StatusRequestEntityTooLarge, "request body is over the limit of 64 bytes")
	h.post("/apps/1/batch_events", `{"batch":[`+strings.Repeat(" ", 64)+`]}`).expect(t, 413, "over the limit of 64")
	if n := h.httpCount("1", "events", "413"); n != 1 {
		t.Fatalf("413 counted %v", n)
	}
}
