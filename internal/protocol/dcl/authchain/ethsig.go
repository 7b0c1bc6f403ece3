package authchain

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

// personalSignatureLen is r‖s‖v. Wallets print it as 0x + 130 hex digits,
// the 132 characters by which @dcl/crypto tells personal from EIP-1654 links.
const personalSignatureLen = 65

// Keccak256 is Ethereum's hash: the original Keccak padding, not FIPS SHA3-256.
func Keccak256(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// PersonalMessageHash is the digest that personal_sign / eth_sign signs:
// keccak256("\x19Ethereum Signed Message:\n" + decimal byte length + message).
// The length counts UTF-8 bytes, not characters.
func PersonalMessageHash(msg string) []byte {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(msg))
	return Keccak256([]byte(prefix), []byte(msg))
}

// IsAddress reports whether s matches ^0x[0-9a-fA-F]{40}$, the EthAddress
// schema of @dcl/schemas that the reference applies to identifications. The
// EIP-55 checksum is not checked: clients send lower-case and checksummed
// forms alike.
func IsAddress(s string) bool {
	if len(s) != 42 || s[:2] != "0x" {
		return false
	}
	for _, c := range []byte(s[2:]) {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// AddressOf returns the lower-case 0x address of a public key: the last 20
// bytes of keccak256 of the uncompressed point without its 0x04 prefix.
func AddressOf(pub *secp256k1.PublicKey) string {
	h := Keccak256(pub.SerializeUncompressed()[1:])
	return "0x" + hex.EncodeToString(h[12:])
}

// errNotHex is the cause of signature decoding failures.
var errNotHex = errors.New("signature must be 0x-prefixed hex with an even number of digits")

// decodeHexSignature decodes a 0x-prefixed hex string. @dcl/crypto 3.4.x
// rejects unprefixed hex, so do we.
func decodeHexSignature(s string) ([]byte, error) {
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok {
		digits, ok = strings.CutPrefix(s, "0X")
	}
	if !ok || len(digits) == 0 || len(digits)%2 != 0 {
		return nil, errNotHex
	}
	b, err := hex.DecodeString(digits)
	if err != nil {
		return nil, errNotHex
	}
	return b, nil
}

// RecoverPersonalSigner returns the lower-case address whose key made the
// 65-byte personal_sign signature r‖s‖v over msg.
//
// v must be 27 or 28 (wallets) or 0 or 1 (some hardware wallets and
// libraries); anything else is ErrBadV. @dcl/crypto 3.4.x silently read other
// values as 0, which only ever recovers a wrong signer. High-S signatures are
// accepted, as upstream does. Other failures are ErrMalformed (length) or
// ErrBadSignature (r or s out of range, no point on the curve). Errors are
// *Error values with Link = -1.
func RecoverPersonalSigner(msg string, sig []byte) (string, error) {
	if len(sig) != personalSignatureLen {
		return "", chainErr(ErrMalformed, "personal signature is %d bytes, want %d", len(sig), personalSignatureLen)
	}
	v := sig[64]
	switch v {
	case 0, 1:
		v += 27
	case 27, 28:
	default:
		return "", chainErr(ErrBadV, "v = %d, want 0, 1, 27 or 28", sig[64])
	}
	// decred's compact form puts the recovery byte first: 27 + recovery id
	// (+4 would mean a compressed key, which Ethereum never uses).
	var compact [personalSignatureLen]byte
	compact[0] = v
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], PersonalMessageHash(msg))
	if err != nil {
		return "", &Error{Kind: ErrBadSignature, Link: -1, Detail: "no public key recovers", Cause: err}
	}
	return AddressOf(pub), nil
}
