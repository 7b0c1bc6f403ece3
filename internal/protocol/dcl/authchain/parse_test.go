package authchain_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
)

func TestParseReferenceChain(t *testing.T) {
	chain, err := authchain.Parse([]byte(referenceChainJSON), authchain.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 {
		t.Fatalf("%d links", len(chain))
	}
	want := []authchain.LinkType{authchain.TypeSigner, authchain.TypeEcdsaEphemeral, authchain.TypeEcdsaSignedEntity}
	for i, l := range chain {
		if l.Type != want[i] {
			t.Errorf("link %d type %s, want %s", i, l.Type, want[i])
		}
	}
	if !strings.Contains(chain[1].Payload, "\nEphemeral address: ") || chain[2].Payload != "dcl-0.4fzyo82mvyr" {
		t.Fatalf("payloads not decoded: %q", chain)
	}
}

func TestParseAcceptsSchemaVariants(t *testing.T) {
	const entity = `{"type":"ECDSA_SIGNED_ENTITY","payload":"p","signature":"0xab"}`
	cases := map[string]string{
		"SIGNER signature empty":       `[{"type":"SIGNER","payload":"0x1","signature":""},` + entity + `]`,
		"SIGNER signature null":        `[{"type":"SIGNER","payload":"0x1","signature":null},` + entity + `]`,
		"SIGNER signature absent":      `[{"type":"SIGNER","payload":"0x1"},` + entity + `]`,
		"whitespace everywhere":        " \n[ {\"type\" : \"SIGNER\" , \"payload\":\"0x1\"} ,\t" + entity + " ]\n ",
		"extra keys ignored":           `[{"type":"SIGNER","payload":"0x1","extra":{"a":[1,2]}},` + entity + `]`,
		"repeated key keeps the last":  `[{"type":"ECDSA_EPHEMERAL","type":"SIGNER","payload":"0x1"},` + entity + `]`,
		"escaped strings":              `[{"type":"SIGN\u0045R","payload":"0x1"},` + entity + `]`,
		"single link (schema minimum)": `[{"type":"SIGNER","payload":"0x1"}]`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			chain, err := authchain.Parse([]byte(doc), authchain.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if chain[0].Type != authchain.TypeSigner || chain[0].Payload != "0x1" || chain[0].Signature != "" {
				t.Fatalf("link 0 = %+v", chain[0])
			}
		})
	}
}

func TestParseRejections(t *testing.T) {
	const signer = `{"type":"SIGNER","payload":"0x1"}`
	cases := []struct{ name, doc, reason string }{
		{"empty input", ``, "malformed"},
		{"null", `null`, "malformed"},
		{"object", `{"type":"SIGNER","payload":"0x1"}`, "malformed"},
		{"string", `"[]"`, "malformed"},
		{"empty array", `[]`, "too_short"},
		{"null element", `[null]`, "malformed"},
		{"number element", `[1]`, "malformed"},
		{"array element", `[[]]`, "malformed"},
		{"unterminated array", `[` + signer, "malformed"},
		{"unterminated object", `[{"type":"SIGNER"`, "malformed"},
		{"trailing comma", `[` + signer + `,]`, "malformed"},
		{"data after the array", `[` + signer + `]x`, "malformed"},
		{"second array", `[` + signer + `][]`, "malformed"},
		{"type missing", `[{"payload":"0x1"}]`, "malformed"},
		{"type key in another case", `[{"Type":"SIGNER","payload":"0x1"}]`, "malformed"},
		{"type unknown", `[{"type":"ECDSA_PERSONAL_EPHEMERAL","payload":"0x1","signature":"0x1"}]`, "malformed"},
		{"type lower case", `[{"type":"signer","payload":"0x1"}]`, "malformed"},
		{"type a number", `[{"type":1,"payload":"0x1"}]`, "malformed"},
		{"type null", `[{"type":null,"payload":"0x1"}]`, "malformed"},
		{"payload missing", `[{"type":"SIGNER"}]`, "malformed"},
		{"payload null", `[{"type":"SIGNER","payload":null}]`, "malformed"},
		{"payload a number", `[{"type":"SIGNER","payload":1}]`, "malformed"},
		{"payload an object", `[{"type":"SIGNER","payload":{}}]`, "malformed"},
		{"signature a number", `[{"type":"SIGNER","payload":"0x1","signature":0}]`, "malformed"},
		{"signature on a SIGNER", `[{"type":"SIGNER","payload":"0x1","signature":"0xab"}]`, "malformed"},
		{"entity signature missing", `[` + signer + `,{"type":"ECDSA_SIGNED_ENTITY","payload":"p"}]`, "malformed"},
		{"entity signature null", `[` + signer + `,{"type":"ECDSA_SIGNED_ENTITY","payload":"p","signature":null}]`, "malformed"},
		{"entity signature empty", `[` + signer + `,{"type":"ECDSA_SIGNED_ENTITY","payload":"p","signature":""}]`, "malformed"},
		{"invalid escape", `[{"type":"SIGNER","payload":"\x"}]`, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chain, err := authchain.Parse([]byte(tc.doc), authchain.Limits{})
			if got := authchain.Reason(err); got != tc.reason {
				t.Fatalf("Parse = %v, %v; reason %q, want %q", chain, err, got, tc.reason)
			}
			if chain != nil {
				t.Fatalf("chain returned with an error: %v", chain)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	link := `{"type":"SIGNER","payload":"0x1"}`
	cases := []struct {
		name string
		doc  string
		lim  authchain.Limits
	}{
		{"document over MaxBytes", `[` + link + `]`, authchain.Limits{MaxBytes: len(link)}},
		{"default MaxBytes is 16 KiB", `[` + link + `]` + strings.Repeat(" ", 16*1024), authchain.Limits{}},
		{"more than MaxLinks", `[` + strings.Repeat(link+`,`, 3) + link + `]`, authchain.Limits{MaxLinks: 3}},
		{"default MaxLinks is 10", `[` + strings.Repeat(link+`,`, 10) + link + `]`, authchain.Limits{}},
		{"payload over MaxPayloadBytes", `[{"type":"SIGNER","payload":"12345"}]`, authchain.Limits{MaxPayloadBytes: 4}},
		{
			"signature over MaxSignatureBytes",
			`[{"type":"SIGNER","payload":"0x1"},{"type":"ECDSA_SIGNED_ENTITY","payload":"p","signature":"0x12345"}]`,
			authchain.Limits{MaxSignatureBytes: 6},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := authchain.Parse([]byte(tc.doc), tc.lim); authchain.Reason(err) != "too_large" {
				t.Fatalf("err = %v, want too_large", err)
			}
		})
	}
	// At the limits exactly: accepted.
	doc := `[` + strings.Repeat(link+`,`, 9) + link + `]`
	if _, err := authchain.Parse([]byte(doc), authchain.Limits{MaxBytes: len(doc)}); err != nil {
		t.Fatalf("10 links in exactly MaxBytes: %v", err)
	}
}

// A long list of links is refused at link MaxLinks+1, before the rest of the
// document is even tokenised: the trailing garbage is never reached.
func TestParseStopsAtMaxLinks(t *testing.T) {
	doc := `[` + strings.Repeat(`{"type":"SIGNER","payload":"0x1"},`, 50) + `!!!`
	_, err := authchain.Parse([]byte(doc), authchain.Limits{})
	if authchain.Reason(err) != "too_large" {
		t.Fatalf("err = %v, want too_large", err)
	}
}

// knownReasons are the labels Reason may return for this package's errors.
var knownReasons = map[string]bool{
	"malformed": true, "too_large": true, "too_short": true, "bad_structure": true, "bad_address": true,
	"wrong_owner": true, "wrong_payload": true, "expired": true, "bad_v": true, "bad_signature": true,
	"eip1654_unavailable": true, "eip1654_error": true,
}

// FuzzParseAuthChain: Parse never panics, every rejection has a known reason,
// every accepted chain satisfies the schema and limits and survives a JSON
// round trip, and VerifyChain on it never panics either.
// testdata/fuzz/FuzzParseAuthChain holds known-bad documents.
func FuzzParseAuthChain(f *testing.F) {
	f.Add([]byte(referenceChainJSON))
	lim := authchain.Limits{MaxBytes: 4096, MaxLinks: 6, MaxPayloadBytes: 512, MaxSignatureBytes: 512}
	f.Fuzz(func(t *testing.T, doc []byte) {
		chain, err := authchain.Parse(doc, lim)
		if err != nil {
			if chain != nil || !knownReasons[authchain.Reason(err)] {
				t.Fatalf("Parse = %v, %v (reason %q)", chain, err, authchain.Reason(err))
			}
			return
		}
		if len(chain) == 0 || len(chain) > lim.MaxLinks {
			t.Fatalf("%d links accepted", len(chain))
		}
		for i, l := range chain {
			switch l.Type {
			case authchain.TypeSigner:
				if l.Signature != "" {
					t.Fatalf("link %d: SIGNER with a signature", i)
				}
			case authchain.TypeEcdsaEphemeral, authchain.TypeEcdsaSignedEntity,
				authchain.TypeEIP1654Ephemeral, authchain.TypeEIP1654SignedEntity:
				if l.Signature == "" {
					t.Fatalf("link %d: no signature", i)
				}
			default:
				t.Fatalf("link %d: type %q accepted", i, l.Type)
			}
			if len(l.Payload) > lim.MaxPayloadBytes || len(l.Signature) > lim.MaxSignatureBytes {
				t.Fatalf("link %d over the limits", i)
			}
		}
		again, err := json.Marshal(chain)
		if err != nil {
			t.Fatal(err)
		}
		back, err := authchain.Parse(again, authchain.Limits{MaxLinks: lim.MaxLinks})
		if err != nil || !reflect.DeepEqual(back, chain) {
			t.Fatalf("round trip: %v, %v; want %v", back, err, chain)
		}
		owner, err := authchain.VerifyChain(context.Background(), chain, chain[0].Payload, chain[len(chain)-1].Payload,
			testNow, authchain.Options{Limits: lim})
		if err != nil && (owner != "" || !knownReasons[authchain.Reason(err)]) {
			t.Fatalf("VerifyChain = %q, %v", owner, err)
		}
	})
}
