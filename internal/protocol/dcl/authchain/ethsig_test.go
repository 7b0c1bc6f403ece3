package authchain_test

import (
	"encoding/hex"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
)

func TestIsAddress(t *testing.T) {
	for _, s := range []string{
		"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",
		"0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34",
		"0x0000000000000000000000000000000000000000",
	} {
		if !authchain.IsAddress(s) {
			t.Errorf("IsAddress(%q) = false", s)
		}
	}
	for _, s := range []string{
		"", "0x", "7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",
		"0X7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",  // the schema wants a lower-case x
		"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf",   // 39 digits
		"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5a", // 41 digits
		"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bfg",  // not hex
		" 0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5", // no trimming
		"dcl-0.4fzyo82mvyr",
	} {
		if authchain.IsAddress(s) {
			t.Errorf("IsAddress(%q) = true", s)
		}
	}
}

// Known answers: Ethereum's Keccak-256 (not FIPS SHA3) and the personal_sign
// prefix with the UTF-8 byte length.
func TestHashes(t *testing.T) {
	if got := hex.EncodeToString(authchain.Keccak256(nil)); got != "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470" {
		t.Fatalf("Keccak256(empty) = %s", got)
	}
	// "hello" is 5 bytes: keccak256("\x19Ethereum Signed Message:\n5hello").
	want := authchain.Keccak256([]byte("\x19Ethereum Signed Message:\n5hello"))
	if got := authchain.PersonalMessageHash("hello"); hex.EncodeToString(got) != hex.EncodeToString(want) {
		t.Fatal("PersonalMessageHash(hello)")
	}
	// "é" is one character but two bytes: the prefix says 2.
	want = authchain.Keccak256([]byte("\x19Ethereum Signed Message:\n2é"))
	if got := authchain.PersonalMessageHash("é"); hex.EncodeToString(got) != hex.EncodeToString(want) {
		t.Fatal("PersonalMessageHash must count UTF-8 bytes")
	}
}

func TestRecoverPersonalSignerErrors(t *testing.T) {
	sig, _ := hex.DecodeString("77a005f1c83e163fa931e6ccb891138f0bf0ca75e295368f59cbdcf9f4aa0c00639ccdc3814ba4894a08e86266358261a973ec7589995a36dcc4ad47947217fd1c")
	if _, err := authchain.RecoverPersonalSigner("dcl-0.4fzyo82mvyr", sig[:64]); authchain.Reason(err) != "malformed" {
		t.Errorf("64 bytes: %v", err)
	}
	for _, v := range []byte{2, 26, 29, 0x25, 0xff} {
		bad := append([]byte{}, sig...)
		bad[64] = v
		if _, err := authchain.RecoverPersonalSigner("dcl-0.4fzyo82mvyr", bad); authchain.Reason(err) != "bad_v" {
			t.Errorf("v=%d: %v", v, err)
		}
	}
	zeroS := append([]byte{}, sig...)
	clear(zeroS[32:64])
	if _, err := authchain.RecoverPersonalSigner("dcl-0.4fzyo82mvyr", zeroS); authchain.Reason(err) != "bad_signature" {
		t.Errorf("s=0: %v", err)
	}
}
