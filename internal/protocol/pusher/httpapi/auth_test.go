package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// The worked example of Pusher's REST API reference (spec §2.1), sent
// byte for byte as documented, with the server clock at its timestamp.
func TestWorkedExample(t *testing.T) {
	h := newHarness(t)
	body := `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	if got := pushersign.BodyMD5([]byte(body)); got != "ec365a775a4cd0599faeb73354201b6f" {
		t.Fatalf("body_md5 %s", got)
	}
	target := "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0" +
		"&body_md5=ec365a775a4cd0599faeb73354201b6f" +
		"&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	res := h.do(r)
	res.expect(t, http.StatusOK, "")
	res.jsonEq(t, `{}`)
	evs := h.fake.triggered()
	if len(evs) != 1 || evs[0].Name != "foo" || evs[0].Data != `{"some":"data"}` || len(evs[0].Channels) != 1 || evs[0].Channels[0] != "project-3" {
		t.Fatalf("triggered %+v", evs)
	}

	// One character of the signature off: refused.
	bad := target[:len(target)-1] + "d"
	h.do(httptest.NewRequest(http.MethodPost, bad, strings.NewReader(body))).expect(t, http.StatusUnauthorized, "invalid auth_signature")
	// The body changed after signing: body_md5 no longer matches.
	h.do(httptest.NewRequest(http.MethodPost, target, strings.NewReader(body+" "))).expect(t, http.StatusUnauthorized, "body_md5")
}

func TestTimestampWindow(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name   string
		offset time.Duration
		status int
	}{
		{"now", 0, 200},
		{"600s ago", -600 * time.Second, 200},
		{"600s ahead", 600 * time.Second, 200},
		{"601s ago", -601 * time.Second, 401},
		{"601s ahead", 601 * time.Second, 401},
		{"a day ago", -24 * time.Hour, 401},
		{"a year ahead", 365 * 24 * time.Hour, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signed(http.MethodGet, "/apps/1/channels", nil, nil, testKey, testSecret, testNow.Add(tc.offset))
			res := h.do(r)
			res.expect(t, tc.status, "")
			if tc.status == 401 {
				ts := testNow.Add(tc.offset).UTC().Format(time.RFC3339)
				want := "Timestamp expired: Given timestamp (" + ts + ") not within 600s of server time (2012-11-16T17:49:39Z)"
				if res.errMsg() != want {
					t.Fatalf("error %q, want %q", res.errMsg(), want)
				}
			}
		})
	}
}

// tamper signs a GET /apps/1/channels, then lets edit change the query
// before the request is built (so the signature no longer covers it, or
// an auth field is missing or malformed).
func tamper(edit func(q url.Values)) *http.Request {
	q := url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, http.MethodGet, "/apps/1/channels", q, nil, testNow)
	edit(q)
	return httptest.NewRequest(http.MethodGet, "/apps/1/channels?"+q.Encode(), nil)
}

// resign computes a valid signature over whatever the query holds now.
func resign(q url.Values, method, path, secret string) {
	q.Del("auth_signature")
	q.Set("auth_signature", pushersign.RESTSignature(secret, method, path, q))
}

func TestAuthFailures(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name   string
		edit   func(q url.Values)
		status int
		want   string
	}{
		{"missing auth_key", func(q url.Values) { q.Del("auth_key") }, 401, "missing auth_key"},
		{"missing auth_timestamp", func(q url.Values) { q.Del("auth_timestamp") }, 401, "missing auth_timestamp"},
		{"missing auth_version", func(q url.Values) { q.Del("auth_version") }, 401, "missing auth_version"},
		{"missing auth_signature", func(q url.Values) { q.Del("auth_signature") }, 401, "missing auth_signature"},
		{"key of another app", func(q url.Values) { q.Set("auth_key", "key2"); resign(q, "GET", "/apps/1/channels", "secret2") }, 401, `auth_key "key2" is not the key of app 1`},
		{"auth_version 2.0", func(q url.Values) { q.Set("auth_version", "2.0"); resign(q, "GET", "/apps/1/channels", testSecret) }, 401, "auth_version"},
		{"timestamp not a number", func(q url.Values) {
			q.Set("auth_timestamp", "yesterday")
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 401, "not an integer"},
		{"timestamp in milliseconds", func(q url.Values) {
			q.Set("auth_timestamp", strconv.FormatInt(testNow.UnixMilli(), 10))
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 401, "Timestamp expired"},
		{"timestamp beyond int64", func(q url.Values) {
			q.Set("auth_timestamp", "99999999999999999999")
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 401, "not an integer"},
		{"timestamp near int64 max", func(q url.Values) {
			q.Set("auth_timestamp", "9223372036854775807")
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 401, "9223372036854775807 seconds since 1970"},
		{"timestamp near int64 min", func(q url.Values) {
			q.Set("auth_timestamp", "-9223372036854775808")
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 401, "Timestamp expired"},
		{"signature of other secret", func(q url.Values) { resign(q, "GET", "/apps/1/channels", "wrong") }, 401, "invalid auth_signature"},
		{"signature not hex", func(q url.Values) { q.Set("auth_signature", "zz-not-hex") }, 401, "invalid auth_signature"},
		{"signature upper-case hex", func(q url.Values) { q.Set("auth_signature", strings.ToUpper(q.Get("auth_signature"))) }, 401, "invalid auth_signature"},
		{"signed for POST", func(q url.Values) { resign(q, "POST", "/apps/1/channels", testSecret) }, 401, `"GET" + "\n" + "/apps/1/channels"`},
		{"unsigned extra param", func(q url.Values) { q.Set("filter_by_prefix", "presence-") }, 401, "invalid auth_signature"},
		{"body_md5 without body, wrong", func(q url.Values) { q.Set("body_md5", "00"); resign(q, "GET", "/apps/1/channels", testSecret) }, 401, "body_md5"},
		{"body_md5 without body, right", func(q url.Values) {
			q.Set("body_md5", pushersign.BodyMD5(nil))
			resign(q, "GET", "/apps/1/channels", testSecret)
		}, 200, ""},
		{"upper-case param key is signed lower-cased", func(q url.Values) { q.Set("FILTER_BY_PREFIX", "x"); resign(q, "GET", "/apps/1/channels", testSecret) }, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.do(tamper(tc.edit)).expect(t, tc.status, tc.want)
		})
	}
}

func TestQueryStringAbuse(t *testing.T) {
	h := newHarness(t)
	q := url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "GET", "/apps/1/channels", q, nil, testNow)
	base := "/apps/1/channels?" + q.Encode()
	for _, tc := range []struct {
		name, target string
		status       int
		want         string
	}{
		// A second value of a signed key would be unsigned: refused.
		{"duplicate param", base + "&filter_by_prefix=a&filter_by_prefix=b", 400, `"filter_by_prefix" is given 2 times`},
		{"duplicate auth_key", base + "&auth_key=" + testKey, 400, `"auth_key" is given 2 times`},
		{"keys differing in case", base + "&info=x&INFO=y", 400, "differ only in letter case"},
		{"bad escape", base + "&x=%zz", 400, "malformed query string"},
		{"semicolon separator", base + ";x=1", 400, "malformed query string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.do(httptest.NewRequest("GET", tc.target, nil)).expect(t, tc.status, tc.want)
		})
	}
}

func TestBodyMD5(t *testing.T) {
	h := newHarness(t)
	body := []byte(`{"name":"e","channel":"c","data":"x"}`)

	// Signed without body_md5 although the body is not empty.
	q := url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "POST", "/apps/1/events", q, nil, testNow)
	r := httptest.NewRequest("POST", "/apps/1/events?"+q.Encode(), strings.NewReader(string(body)))
	h.do(r).expect(t, 401, "missing body_md5")

	// Signed with the MD5 of another body.
	q = url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "POST", "/apps/1/events", q, []byte("other"), testNow)
	r = httptest.NewRequest("POST", "/apps/1/events?"+q.Encode(), strings.NewReader(string(body)))
	h.do(r).expect(t, 401, "does not match the MD5 of the 37-byte request body")

	// Upper-case hex MD5, signed as sent: accepted (hex case carries no meaning).
	q = url.Values{}
	q.Set("body_md5", strings.ToUpper(pushersign.BodyMD5(body)))
	q.Set("auth_key", testKey)
	q.Set("auth_timestamp", strconv.FormatInt(testNow.Unix(), 10))
	q.Set("auth_version", "1.0")
	resign(q, "POST", "/apps/1/events", testSecret)
	r = httptest.NewRequest("POST", "/apps/1/events?"+q.Encode(), strings.NewReader(string(body)))
	h.do(r).expect(t, 200, "")
}

func TestPathPrefix(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PathPrefix = "/ws/" })
	// Signed over the full path, prefix included: accepted.
	h.do(signed("GET", "/ws/apps/1/channels", nil, nil, testKey, testSecret, testNow)).expect(t, 200, "")
	// Signed without the prefix but sent with it: the path is wrong.
	q := url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "GET", "/apps/1/channels", q, nil, testNow)
	h.do(httptest.NewRequest("GET", "/ws/apps/1/channels?"+q.Encode(), nil)).expect(t, 401, `"/ws/apps/1/channels"`)
	// Without the prefix there is no such endpoint.
	h.do(signed("GET", "/apps/1/channels", nil, nil, testKey, testSecret, testNow)).expect(t, 404, "no such endpoint")
}

// A channel name sent percent-escaped may be signed either way.
func TestEscapedPathSigning(t *testing.T) {
	h := newHarness(t)
	h.fake.stats["#server-to-user-7"] = engineStats(1, 0)
	q := url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "GET", "/apps/1/channels/%23server-to-user-7", q, nil, testNow)
	h.do(httptest.NewRequest("GET", "/apps/1/channels/%23server-to-user-7?"+q.Encode(), nil)).expect(t, 200, "")
	q = url.Values{}
	pushersign.SignRESTQuery(testKey, testSecret, "GET", "/apps/1/channels/#server-to-user-7", q, nil, testNow)
	res := h.do(httptest.NewRequest("GET", "/apps/1/channels/%23server-to-user-7?"+q.Encode(), nil))
	res.expect(t, 200, "")
	res.jsonEq(t, `{"occupied":true}`)
}

func TestAppStatus(t *testing.T) {
	h := newHarness(t)
	h.do(signed("GET", "/apps/99/channels", nil, nil, testKey, testSecret, testNow)).expect(t, 404, `unknown app id "99"`)
	h.do(signed("GET", "/apps/2/channels", nil, nil, "key2", "secret2", testNow)).expect(t, 403, "app 2 is disabled")
	// A disabled app's state is not revealed to an unauthenticated caller.
	h.do(signed("GET", "/apps/2/channels", nil, nil, "key2", "wrong", testNow)).expect(t, 401, "invalid auth_signature")
	if n := h.httpCount("unknown", "channels", "404"); n != 1 {
		t.Fatalf("unknown-app 404s counted %v, want 1 under app label \"unknown\"", n)
	}
	if n := h.httpCount("2", "channels", "403"); n != 1 {
		t.Fatalf("403 counted %v", n)
	}
}

// queryParams is url.ParseQuery plus singleValued in one pass; the two
// must agree on every query, errors included.
func TestQueryParamsAgreesWithParseQuery(t *testing.T) {
	for _, q := range []string{
		"", "a=1&b=2", "A=1&b=x%20y+z", "&&a=1&", "=x&k", "a=1&a=1", "a=%zz", "%zz=1",
		"a=1;b=2", "channels%5B%5D=x&Auth_Key=k", "k=" + strings.Repeat("v", 9000),
	} {
		got, gerr := queryParams(q)
		var want map[string]string
		var werr *apiError
		if values, err := url.ParseQuery(q); err != nil {
			werr = errorf(http.StatusBadRequest, "malformed query string: %v", err)
		} else {
			want, werr = singleValued(values)
		}
		if fmt.Sprint(got, gerr) != fmt.Sprint(want, werr) {
			t.Errorf("query %.40q: got %v %v, want %v %v", q, got, gerr, want, werr)
		}
	}
	// Which of the two spellings the message names first follows map
	// order in singleValued, so only the kind of refusal is compared.
	if _, aerr := queryParams("a=1&A=2"); aerr == nil || aerr.status != http.StatusBadRequest || !strings.Contains(aerr.msg, "differ only in letter case") {
		t.Errorf("a=1&A=2: %v", aerr)
	}
}
