package authchain

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The ABI encoding of isValidSignature(bytes32,bytes) for a 65-byte
// signature, written out word by word.
func TestIsValidSignatureCalldata(t *testing.T) {
	hash := make([]byte, 32)
	for i := range hash {
		hash[i] = byte(i)
	}
	sig := make([]byte, 65)
	for i := range sig {
		sig[i] = 0xff
	}
	want := "1626ba7e" +
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
		strings.Repeat("0", 62) + "40" +
		strings.Repeat("0", 62) + "41" +
		strings.Repeat("ff", 65) + strings.Repeat("00", 31)
	if got := hex.EncodeToString(isValidSignatureCalldata(hash, sig)); got != want {
		t.Fatalf("calldata\n got %s\nwant %s", got, want)
	}
	// An empty signature is a zero length and no data words.
	if got := len(isValidSignatureCalldata(hash, nil)); got != 4+96 {
		t.Fatalf("empty signature: %d bytes", got)
	}
}

func TestIsMagicResult(t *testing.T) {
	word := func(h string) []byte {
		b, _ := hex.DecodeString(h)
		return b
	}
	cases := map[string]bool{
		"1626ba7e" + strings.Repeat("00", 28):        true,
		"1626ba7e":                                   false, // not ABI-encoded
		"1626ba7e" + strings.Repeat("00", 27) + "01": false,
		"1626ba7f" + strings.Repeat("00", 28):        false,
		"1626ba7e" + strings.Repeat("00", 60):        false, // an echoed calldata prefix
		"":                                           false,
		strings.Repeat("00", 28) + "1626ba7e":        false, // right-aligned is not bytes4
	}
	for h, want := range cases {
		if got := isMagicResult(word(h)); got != want {
			t.Errorf("isMagicResult(%s) = %v", h, got)
		}
	}
}
