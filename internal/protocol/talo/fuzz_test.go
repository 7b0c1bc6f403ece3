package talo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeEnvelope feeds the socket router's decoder arbitrary frames
// (seed corpus: testdata/fuzz/FuzzDecodeEnvelope, known-bad inputs). It
// must never panic; every outcome is either a known request with an
// object as data, or a v1.error that encodes to valid JSON with res first.
//
//	go test -run '^$' -fuzz FuzzDecodeEnvelope -fuzztime 30s ./internal/protocol/talo/
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"req":"v1.players.identify","data":{"playerAliasId":1,"socketToken":"t"}}`,
		`{"req":"v1.channels.message","data":{"channel":{"id":1},"message":"hi"}}`,
		`{"req":"v1.player-relationships.broadcast","data":{"message":"x"}}`,
		`{"req":"v1.channels.message","data":{"channel":[],"message":1}}`,
		"sig\n{\"req\":\"v1.channels.message\",\"data\":{}}",
		`{"req":null,"data":{}}`, `{"data":{}}`, `null`, `{}`, `[]`, `"`, "\xff\xfe", `{"req":"v1.players.identify","data":{"playerAliasId":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, body := splitSignature(frame)
		for _, in := range [][]byte{frame, body} {
			env := decodeEnvelope(in)
			if env.err != nil {
				b := encodeRes("v1.error", *env.err)
				if !json.Valid(b) || !bytes.HasPrefix(b, []byte(`{"res":"v1.error","data":{"req":`)) {
					t.Fatalf("bad error frame %s", b)
				}
				if env.err.ErrorCode != errRouting && env.err.ErrorCode != errInvalidMessage {
					t.Fatalf("decoder produced %s", env.err.ErrorCode)
				}
				continue
			}
			if _, ok := listeners[env.req]; !ok || !isObject(env.data) {
				t.Fatalf("accepted %q with data %s", env.req, env.data)
			}
			d, ok := decodeData(env.req, env.data)
			if !ok {
				if c := jsCause(env.data); c == nil || !json.Valid([]byte(*c)) {
					t.Fatalf("cause of %s is not JSON", env.data)
				}
				continue
			}
			switch v := d.(type) {
			case identifyData:
				_ = v.aliasID()
				if strings.ContainsAny(v.aliasKey(), " \n") {
					t.Fatalf("alias key %q", v.aliasKey())
				}
			case messageData, broadcastData:
			default:
				t.Fatalf("unexpected data %T", d)
			}
		}
	})
}

// FuzzParseSignature feeds the request-signing parser arbitrary headers
// (seed corpus: testdata/fuzz/FuzzParseSignature). It must never panic;
// what it accepts has a positive version and a 32-byte MAC; and a real
// signature over the fuzzed body always parses and verifies.
//
//	go test -run '^$' -fuzz FuzzParseSignature -fuzztime 30s ./internal/protocol/talo/
func FuzzParseSignature(f *testing.F) {
	f.Add(Sign(1, "secret", "rid", 1700000000000, []byte(`{"req":"x"}`)), []byte(`{"req":"x"}`))
	for _, s := range []string{"", "|", "1|", "1|.", "0|e30=.AAAA", "-1|e30=.e30=", "1|e30=.e30=", "99999999999999999999|a.b",
		"1|eyJyaWQiOiIiLCJwYXlsb2FkIjoiIiwidGltZXN0YW1wIjowfQ==.AAAA", "1|!!!.???", "1|e30=|e30=.x"} {
		f.Add(s, []byte("{}"))
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if sig, err := parseSignature(header); err == nil {
			if sig.version < 1 || len(sig.mac) != 32 || sig.rid == "" {
				t.Fatalf("accepted %q as %+v", header, sig)
			}
			_ = sig.checkMAC("secret", body)
		}
		good := Sign(3, "k", "r", 42, body)
		sig, err := parseSignature(good)
		if err != nil || !sig.checkMAC("k", body) || sig.checkMAC("other", body) || sig.version != 3 || sig.timestamp != 42 {
			t.Fatalf("own signature %q: %+v %v", good, sig, err)
		}
	})
}
