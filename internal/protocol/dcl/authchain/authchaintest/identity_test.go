package authchaintest

import (
	"strings"
	"testing"
	"time"
)

// EIP-55's own examples.
func TestChecksumAddress(t *testing.T) {
	for _, want := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		if got := ChecksumAddress(strings.ToLower(want)); got != want {
			t.Errorf("ChecksumAddress = %s, want %s", got, want)
		}
	}
}

// The delegation text must be byte-identical to Authenticator.getEphemeralMessage.
func TestEphemeralMessage(t *testing.T) {
	exp := time.Date(3021, 10, 16, 22, 32, 29, 626_000_000, time.UTC)
	if got := EphemeralMessage(PublicEphemeralAddress, exp); got != PublicDelegationMessage {
		t.Fatalf("got %q", got)
	}
	// toISOString always prints milliseconds and UTC.
	local := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	if got := EphemeralMessage("0xabc", local); !strings.HasSuffix(got, "Expiration: 2030-01-02T02:04:05.000Z") {
		t.Fatalf("got %q", got)
	}
}
