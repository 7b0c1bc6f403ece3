// Package authchain parses and verifies Decentraland auth chains, the JSON
// proof that an Ethereum address signed a payload (in ws-room: the handshake
// challenge), possibly through a short-lived ephemeral key.
//
// The checks follow @dcl/crypto's Authenticator.validateSignature, plus
// stricter rules that every real client still passes (spec section 10.5):
// at least two links, SIGNER first with a real address, only *_EPHEMERAL links
// in the middle, a *_SIGNED_ENTITY of the expected payload last, and the owner
// equal to the address the peer identified as. Parsing is bounded: the JSON
// comes from unauthenticated peers.
package authchain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// LinkType is the wire name of a link's "type" field. The @dcl/schemas enum
// keys differ from these strings (ECDSA_PERSONAL_EPHEMERAL is sent as
// "ECDSA_EPHEMERAL"): only the strings matter here.
type LinkType string

// The five link types of @dcl/schemas. Any other string is malformed.
const (
	TypeSigner              LinkType = "SIGNER"
	TypeEcdsaEphemeral      LinkType = "ECDSA_EPHEMERAL"
	TypeEcdsaSignedEntity   LinkType = "ECDSA_SIGNED_ENTITY"
	TypeEIP1654Ephemeral    LinkType = "ECDSA_EIP_1654_EPHEMERAL"
	TypeEIP1654SignedEntity LinkType = "ECDSA_EIP_1654_SIGNED_ENTITY"
)

func (t LinkType) known() bool {
	switch t {
	case TypeSigner, TypeEcdsaEphemeral, TypeEcdsaSignedEntity, TypeEIP1654Ephemeral, TypeEIP1654SignedEntity:
		return true
	}
	return false
}

func (t LinkType) isEphemeral() bool {
	return t == TypeEcdsaEphemeral || t == TypeEIP1654Ephemeral
}

func (t LinkType) isSignedEntity() bool {
	return t == TypeEcdsaSignedEntity || t == TypeEIP1654SignedEntity
}

// Link is one element of an auth chain. Signature is "" for a SIGNER (the
// JSON may say "", null or nothing) and a 0x-hex string otherwise.
type Link struct {
	Type      LinkType `json:"type"`
	Payload   string   `json:"payload"`
	Signature string   `json:"signature"`
}

// Chain is a parsed auth chain: SIGNER(owner), zero or more ephemeral
// delegations, and the link that signs the payload.
type Chain []Link

// Limits bound the work done on untrusted chain JSON. A zero field takes the
// value of DefaultLimits.
type Limits struct {
	MaxBytes          int // whole JSON document
	MaxLinks          int // links in the chain
	MaxPayloadBytes   int // one link's payload, decoded
	MaxSignatureBytes int // one link's signature string (EIP-1271 wallet signatures can be long)
}

// DefaultLimits: the JSON arrives in one ws-room frame (16 KiB by default);
// the newest @dcl/schemas allow at most 10 links. Real chains are 2 or 3
// links and about 600 bytes.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:          16 * 1024,
		MaxLinks:          10,
		MaxPayloadBytes:   8 * 1024,
		MaxSignatureBytes: 8 * 1024,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxLinks <= 0 {
		l.MaxLinks = d.MaxLinks
	}
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = d.MaxPayloadBytes
	}
	if l.MaxSignatureBytes <= 0 {
		l.MaxSignatureBytes = d.MaxSignatureBytes
	}
	return l
}

// Parse decodes auth-chain JSON and applies the @dcl/schemas AuthChain
// schema: a non-empty array of objects, each with a known string "type", a
// string "payload", and a "signature" that is a non-empty string except on a
// SIGNER, where it must be "", null or absent. Extra keys are ignored, keys
// are case-sensitive and a repeated key keeps its last value (as JSON.parse).
//
// It stops early at the limits: it never decodes more than MaxLinks links.
// Parse does not check signatures or link order; VerifyChain does.
func Parse(data []byte, lim Limits) (Chain, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, chainErr(ErrTooLarge, "%d bytes, limit %d", len(data), lim.MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, &Error{Kind: ErrMalformed, Link: -1, Detail: "not a JSON array", Cause: err}
	}
	var chain Chain
	for dec.More() {
		i := len(chain)
		if i == lim.MaxLinks {
			return nil, chainErr(ErrTooLarge, "more than %d links", lim.MaxLinks)
		}
		// A map, not a struct: encoding/json matches struct keys
		// case-insensitively, JSON.parse does not.
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			return nil, &Error{Kind: ErrMalformed, Link: i, Detail: "not a JSON object", Cause: err}
		}
		if obj == nil { // a JSON null element
			return nil, &Error{Kind: ErrMalformed, Link: i, Detail: "not a JSON object"}
		}
		link, err := linkFromJSON(i, obj)
		if err != nil {
			return nil, err
		}
		if err := checkLink(i, link, lim); err != nil {
			return nil, err
		}
		chain = append(chain, link)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, &Error{Kind: ErrMalformed, Link: -1, Detail: "unterminated array", Cause: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Kind: ErrMalformed, Link: -1, Detail: "data after the array", Cause: err}
	}
	if len(chain) == 0 {
		return nil, chainErr(ErrTooShort, "empty chain")
	}
	return chain, nil
}

// linkFromJSON reads the three fields, requiring JSON strings (null only for
// a signature). It does not judge the values; checkLink does.
func linkFromJSON(i int, obj map[string]json.RawMessage) (Link, error) {
	var l Link
	typ, ok, err := jsonString(obj, "type")
	if err != nil || !ok {
		return l, &Error{Kind: ErrMalformed, Link: i, Detail: `"type" must be a string`, Cause: err}
	}
	l.Type = LinkType(typ)
	if !l.Type.known() {
		// Quote with %q and cap it: the value is attacker-chosen and goes to logs.
		return l, &Error{Kind: ErrMalformed, Link: i, Detail: fmt.Sprintf("unknown link type %.64q", typ)}
	}
	if l.Payload, ok, err = jsonString(obj, "payload"); err != nil || !ok {
		return l, &Error{Kind: ErrMalformed, Link: i, LinkType: l.Type, Detail: `"payload" must be a string`, Cause: err}
	}
	if l.Signature, _, err = jsonString(obj, "signature"); err != nil {
		return l, &Error{Kind: ErrMalformed, Link: i, LinkType: l.Type, Detail: `"signature" must be a string or null`, Cause: err}
	}
	return l, nil
}

// jsonString returns obj[key] as a string. ok is false when the key is
// absent or null; err is set when the value is another JSON type.
func jsonString(obj map[string]json.RawMessage, key string) (s string, ok bool, err error) {
	raw, present := obj[key]
	if !present {
		return "", false, nil
	}
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("%s is not a string", key)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// checkLink applies the per-link schema rules and size limits. VerifyChain
// runs it again so that chains built in Go get the same checks as parsed ones.
func checkLink(i int, l Link, lim Limits) error {
	if !l.Type.known() {
		return linkErr(ErrMalformed, i, Link{}, nil, "unknown link type %.64q", string(l.Type))
	}
	if len(l.Payload) > lim.MaxPayloadBytes {
		return linkErr(ErrTooLarge, i, l, nil, "payload of %d bytes, limit %d", len(l.Payload), lim.MaxPayloadBytes)
	}
	if len(l.Signature) > lim.MaxSignatureBytes {
		return linkErr(ErrTooLarge, i, l, nil, "signature of %d bytes, limit %d", len(l.Signature), lim.MaxSignatureBytes)
	}
	if l.Type == TypeSigner {
		if l.Signature != "" {
			return linkErr(ErrMalformed, i, l, nil, "a SIGNER link carries no signature")
		}
	} else if l.Signature == "" {
		return linkErr(ErrMalformed, i, l, nil, "signature missing")
	}
	return nil
}
