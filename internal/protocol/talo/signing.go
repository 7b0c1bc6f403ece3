package talo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// Request signing (spec section 2.3): a signature is
//
//	{keyVersion}|{base64(headerJSON)}.{base64(HMAC-SHA256(secret, base64(headerJSON)))}
//
// with headerJSON = {"rid": <unique string>, "payload": <sha256 hex of the
// signed JSON>, "timestamp": <ms>}. The same scheme signs socket frames
// ("<signature>\n<json>") and HTTP bodies (X-Talo-Signature).

// signature is a parsed signature, not yet verified.
type signature struct {
	version   int
	headerB64 string // the signed message
	mac       []byte
	rid       string
	payload   string
	timestamp int64
}

var errBadSignature = errors.New("talo: malformed signature")

// parseSignature splits and decodes a signature without checking it.
func parseSignature(s string) (signature, error) {
	var sig signature
	ver, rest, ok := strings.Cut(s, "|")
	if !ok {
		return sig, errBadSignature
	}
	v, err := strconv.Atoi(ver)
	if err != nil || v < 1 {
		return sig, errBadSignature
	}
	hdr, mac, ok := strings.Cut(rest, ".")
	if !ok || hdr == "" || mac == "" {
		return sig, errBadSignature
	}
	rawHdr, err := decodeB64(hdr)
	if err != nil {
		return sig, errBadSignature
	}
	if sig.mac, err = decodeB64(mac); err != nil || len(sig.mac) != sha256.Size {
		return sig, errBadSignature
	}
	var h struct {
		RID       *string  `json:"rid"`
		Payload   *string  `json:"payload"`
		Timestamp *float64 `json:"timestamp"`
	}
	if json.Unmarshal(rawHdr, &h) != nil || h.RID == nil || h.Payload == nil || h.Timestamp == nil || *h.RID == "" {
		return sig, errBadSignature
	}
	if *h.Timestamp < 0 || *h.Timestamp > 1<<53 {
		return sig, errBadSignature
	}
	sig.version, sig.headerB64 = v, hdr
	sig.rid, sig.payload, sig.timestamp = *h.RID, *h.Payload, int64(*h.Timestamp)
	return sig, nil
}

// decodeB64 accepts standard base64 with or without padding (clients
// differ) and the URL-safe alphabet.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errBadSignature
}

// checkMAC verifies the payload hash and the HMAC (constant time).
func (sig signature) checkMAC(secret string, body []byte) bool {
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	if !hmac.Equal([]byte(strings.ToLower(sig.payload)), []byte(want)) {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(sig.headerB64))
	return hmac.Equal(m.Sum(nil), sig.mac)
}

// Sign produces a signature for body (clients, tests, tools).
func Sign(version int, secret, rid string, timestampMS int64, body []byte) string {
	sum := sha256.Sum256(body)
	hdr, _ := json.Marshal(struct {
		RID       string `json:"rid"`
		Payload   string `json:"payload"`
		Timestamp int64  `json:"timestamp"`
	}{rid, hex.EncodeToString(sum[:]), timestampMS})
	h64 := base64.StdEncoding.EncodeToString(hdr)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h64))
	return strconv.Itoa(version) + "|" + h64 + "." + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
