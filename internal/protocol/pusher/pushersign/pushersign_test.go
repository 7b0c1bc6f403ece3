package pushersign

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Vectors from the Pusher docs (the authentication examples), recomputed
// independently.
const (
	vecKey    = "278d425bdf160c739803"
	vecSecret = "7ad3773142a6692b25b8"
	vecSocket = "1234.1234"
)

func TestChannelAuthPrivate(t *testing.T) {
	got := ChannelAuth(vecKey, vecSecret, vecSocket, "private-foobar", "")
	want := vecKey + ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	if got != want {
		t.Fatalf("ChannelAuth private = %q, want %q", got, want)
	}
}

func TestChannelAuthPresence(t *testing.T) {
	data := `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`
	got := ChannelAuth(vecKey, vecSecret, vecSocket, "presence-foobar", data)
	want := vecKey + ":31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
	if got != want {
		t.Fatalf("ChannelAuth presence = %q, want %q", got, want)
	}
}

func TestUserAuth(t *testing.T) {
	got := UserAuth(vecKey, vecSecret, vecSocket, `{"id":"12345"}`)
	want := vecKey + ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
	if got != want {
		t.Fatalf("UserAuth = %q, want %q", got, want)
	}
}

const (
	exampleBody = `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	exampleMD5  = "ec365a775a4cd0599faeb73354201b6f"
	exampleSig  = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
)

func TestBodyMD5(t *testing.T) {
	if got := BodyMD5([]byte(exampleBody)); got != exampleMD5 {
		t.Fatalf("BodyMD5 = %q, want %q", got, exampleMD5)
	}
	if got := BodyMD5(nil); got != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Fatalf("BodyMD5(nil) = %q", got)
	}
}

func TestRESTSignatureWorkedExample(t *testing.T) {
	q := url.Values{
		"auth_key":       {vecKey},
		"auth_timestamp": {"1353088179"},
		"auth_version":   {"1.0"},
		"body_md5":       {exampleMD5},
	}
	wantStr := "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=" + exampleMD5
	if got := restStringToSign("POST", "/apps/3/events", q); got != wantStr {
		t.Fatalf("string to sign = %q, want %q", got, wantStr)
	}
	if got := RESTSignature(vecSecret, "POST", "/apps/3/events", q); got != exampleSig {
		t.Fatalf("RESTSignature = %q, want %q", got, exampleSig)
	}
}

func TestRESTSignatureIgnoresSignatureAndNormalises(t *testing.T) {
	base := url.Values{
		"auth_key":       {vecKey},
		"auth_timestamp": {"1353088179"},
		"auth_version":   {"1.0"},
		"body_md5":       {exampleMD5},
	}
	// auth_signature is excluded, key case is folded, method case is folded.
	q := url.Values{
		"AUTH_KEY":       {vecKey},
		"auth_timestamp": {"1353088179"},
		"Auth_Version":   {"1.0"},
		"body_md5":       {exampleMD5},
		"auth_signature": {"whatever"},
	}
	if got := RESTSignature(vecSecret, "post", "/apps/3/events", q); got != exampleSig {
		t.Fatalf("normalised signature = %q, want %q", got, exampleSig)
	}
	// Values are not URL-escaped in the signed string.
	base.Set("filter_by_prefix", "presence-a b&c")
	s := restStringToSign("GET", "/apps/3/channels", base)
	if !strings.Contains(s, "\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="+exampleMD5+"&filter_by_prefix=presence-a b&c") {
		t.Fatalf("value escaped in %q", s)
	}
}

func TestSignRESTQueryReproducesExample(t *testing.T) {
	q := url.Values{}
	SignRESTQuery(vecKey, vecSecret, "POST", "/apps/3/events", q, []byte(exampleBody), time.Unix(1353088179, 0))
	want := map[string]string{
		"auth_key":       vecKey,
		"auth_timestamp": "1353088179",
		"auth_version":   "1.0",
		"body_md5":       exampleMD5,
		"auth_signature": exampleSig,
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// Re-signing the same query must give the same result (old signature dropped).
	SignRESTQuery(vecKey, vecSecret, "POST", "/apps/3/events", q, []byte(exampleBody), time.Unix(1353088179, 0))
	if got := q.Get("auth_signature"); got != exampleSig {
		t.Fatalf("re-sign = %q, want %q", got, exampleSig)
	}
}

func TestSignRESTQueryEmptyBody(t *testing.T) {
	q := url.Values{"info": {"user_count"}, "body_md5": {"stale"}}
	SignRESTQuery(vecKey, vecSecret, "GET", "/apps/3/channels", q, nil, time.Unix(1353088179, 0))
	if q.Has("body_md5") {
		t.Fatalf("body_md5 present for empty body: %v", q)
	}
	if !Equal(q.Get("auth_signature"), RESTSignature(vecSecret, "GET", "/apps/3/channels", q)) {
		t.Fatal("signature does not verify")
	}
	if !strings.Contains(restStringToSign("GET", "/apps/3/channels", q), "info=user_count") {
		t.Fatal("extra params must be part of the signed string")
	}
}

func TestHMACHexAndEqual(t *testing.T) {
	sig := HMACHex(vecSecret, vecSocket+":private-foobar")
	if sig != "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4" {
		t.Fatalf("HMACHex = %q", sig)
	}
	if !Equal(sig, sig) {
		t.Fatal("Equal(x, x) = false")
	}
	if Equal(sig, sig[:len(sig)-1]+"0") || Equal(sig, sig[:10]) || Equal(sig, "") {
		t.Fatal("Equal accepted a different signature")
	}
}

// Signer.EqualREST signs exactly what RESTSignature signs.
func TestSignerEqualREST(t *testing.T) {
	s := NewSigner(vecSecret)
	params := map[string]string{
		"auth_key": vecKey, "auth_timestamp": "1353088179", "auth_version": "1.0",
		"body_md5": exampleMD5, "auth_signature": exampleSig,
	}
	for range 2 { // the second time from the pool
		if !s.EqualREST(exampleSig, "POST", "/apps/3/events", params) {
			t.Fatal("the worked example's signature was refused")
		}
		if !s.EqualREST(exampleSig, "post", "/apps/3/events", params) {
			t.Fatal("the method is upper-cased before signing")
		}
		if s.EqualREST(exampleSig, "POST", "/apps/3/event", params) || s.EqualREST(exampleSig[:63]+"d", "POST", "/apps/3/events", params) ||
			s.EqualREST(strings.ToUpper(exampleSig), "POST", "/apps/3/events", params) {
			t.Fatal("a wrong path or signature was accepted")
		}
	}
	q := url.Values{"b": {"2"}, "a": {"x y"}, "auth_key": {vecKey}}
	if !s.EqualREST(RESTSignature(vecSecret, "GET", "/p", q), "GET", "/p", map[string]string{"b": "2", "a": "x y", "auth_key": vecKey}) {
		t.Fatal("Signer and RESTSignature disagree")
	}
}

func TestEqualBodyMD5(t *testing.T) {
	if !EqualBodyMD5([]byte(exampleBody), exampleMD5) || !EqualBodyMD5([]byte(exampleBody), strings.ToUpper(exampleMD5)) ||
		EqualBodyMD5([]byte(exampleBody+" "), exampleMD5) || EqualBodyMD5([]byte(exampleBody), exampleMD5[:31]) {
		t.Fatal("EqualBodyMD5")
	}
}

func BenchmarkVerifyREST(b *testing.B) {
	q := url.Values{"auth_key": {vecKey}, "auth_timestamp": {"1353088179"}, "auth_version": {"1.0"}, "body_md5": {exampleMD5}}
	params := map[string]string{"auth_key": vecKey, "auth_timestamp": "1353088179", "auth_version": "1.0", "body_md5": exampleMD5}
	b.Run("RESTSignature", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !Equal(RESTSignature(vecSecret, "POST", "/apps/3/events", q), exampleSig) {
				b.Fatal("refused")
			}
		}
	})
	s := NewSigner(vecSecret)
	b.Run("Signer", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if !s.EqualREST(exampleSig, "POST", "/apps/3/events", params) {
				b.Fatal("refused")
			}
		}
	})
}

func TestSignerEqualHMAC(t *testing.T) {
	s := NewSigner(vecSecret)
	want := HMACHex(vecSecret, vecSocket+":presence-foobar:{}")
	for range 2 {
		if !s.EqualHMAC(want, vecSocket, ":", "presence-foobar", ":", "{}") || s.EqualHMAC(want, vecSocket, ":presence-foobar") {
			t.Fatal("EqualHMAC")
		}
	}
}
