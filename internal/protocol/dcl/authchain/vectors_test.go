package authchain_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
)

// Published signatures (spec section 10.7, from @dcl/crypto, crypto-fetch and
// decentraland-crypto-rust fixtures), each recovered to its known signer.
var personalSignVectors = []struct {
	name, signer, signature, message string
}{
	{
		name:      "crypto-fetch ephemeral delegation, expires 3021",
		signer:    "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",
		signature: "0x39dd4ddf131ad2435d56c81c994c4417daef5cf5998258027ef8a1401470876a1365a6b79810dc0c4a2e9352befb63a9e4701d67b38007d83ffc4cd2b7a38ad51b",
		message:   "Decentraland Login\nEphemeral address: 0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34\nExpiration: 3021-10-16T22:32:29.626Z",
	},
	{
		name:      "challenge signed by that ephemeral key",
		signer:    "0x84452bbfa4ca14b7828e2f3bbd106a2bd495cd34",
		signature: "0x77a005f1c83e163fa931e6ccb891138f0bf0ca75e295368f59cbdcf9f4aa0c00639ccdc3814ba4894a08e86266358261a973ec7589995a36dcc4ad47947217fd1c",
		message:   "dcl-0.4fzyo82mvyr",
	},
	{
		name:      "rust doc entity by the same ephemeral key",
		signer:    "0x84452bbfa4ca14b7828e2f3bbd106a2bd495cd34",
		signature: "0x013e0b0b75bd8404d70a37d96bb893596814d8f29f517e383d9d1421111f83c32d4ca0d6e399349c7badd54261feaa39895d027880d28d806c01089677400b7c1b",
		message:   "signed message",
	},
	{
		name:      "@dcl/crypto simple chain",
		signer:    "0xeC6E6c0841a2bA474E92Bf42BaF76bFe80e8657C",
		signature: "0xaaafb0368c13c42e401e71162cb55a062b3b0a5389e0740e7dc34e623b12f0fd65e2fadac51ab5f0de8f69b1311f23f1f218753e8a957043a2a789ba721141f91c",
		message:   "QmWyFNeHbxXaPtUnzKvDZPpKSa4d5anZEZEFJ8TC1WgcfU",
	},
	{
		name:      "rust simple chain",
		signer:    "0x4A1b9FD363dE915145008C41FA217377B2C223F2",
		signature: "0xb962b57accc8e12083769339888f82752d13f280012b2c7b2aa2722eae103aea7a623dc88605bf7036ec8c23b0bb8f036b52f5e4e30ee913f6f2a077d5e5e3e01b",
		message:   "QmUsqJaHc5HQaBrojhBdjF4fr5MQc6CqhwZjqwhVRftNAo",
	},
}

func TestPersonalSignVectors(t *testing.T) {
	for _, v := range personalSignVectors {
		t.Run(v.name, func(t *testing.T) {
			sig, err := hex.DecodeString(strings.TrimPrefix(v.signature, "0x"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := authchain.RecoverPersonalSigner(v.message, sig)
			if err != nil {
				t.Fatal(err)
			}
			if got != strings.ToLower(v.signer) {
				t.Fatalf("recovered %s, want %s", got, strings.ToLower(v.signer))
			}
		})
	}
}

// The published ephemeral key derives its address, and decred's RFC 6979
// signature is byte-identical to the one @dcl/crypto produced.
func TestPublicEphemeralKeySignsLikeDclCrypto(t *testing.T) {
	eph, err := authchaintest.IdentityFromHex(authchaintest.PublicEphemeralKey)
	if err != nil {
		t.Fatal(err)
	}
	if eph.Address != authchaintest.PublicEphemeralAddress {
		t.Fatalf("address %s, want %s (checksummed)", eph.Address, authchaintest.PublicEphemeralAddress)
	}
	for _, v := range personalSignVectors[1:3] {
		if got := eph.SignPersonal(v.message); got != v.signature {
			t.Fatalf("signature of %q:\n got %s\nwant %s", v.message, got, v.signature)
		}
	}
}

// The chain of spec section 10.1, exactly as Authenticator.signPayload
// serialises it.
const referenceChainJSON = `[{"type":"SIGNER","payload":"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5","signature":""},` +
	`{"type":"ECDSA_EPHEMERAL","payload":"Decentraland Login\nEphemeral address: 0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34\nExpiration: 3021-10-16T22:32:29.626Z","signature":"0x39dd4ddf131ad2435d56c81c994c4417daef5cf5998258027ef8a1401470876a1365a6b79810dc0c4a2e9352befb63a9e4701d67b38007d83ffc4cd2b7a38ad51b"},` +
	`{"type":"ECDSA_SIGNED_ENTITY","payload":"dcl-0.4fzyo82mvyr","signature":"0x77a005f1c83e163fa931e6ccb891138f0bf0ca75e295368f59cbdcf9f4aa0c00639ccdc3814ba4894a08e86266358261a973ec7589995a36dcc4ad47947217fd1c"}]`

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestVerifyReferenceChain(t *testing.T) {
	ctx := context.Background()
	for _, identified := range []string{
		"0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",
		"0x7949F9F239D1A0816CE5EB364A1F588AE9CC1BF5", // identification case does not matter
	} {
		owner, err := authchain.Verify(ctx, []byte(referenceChainJSON), identified, "dcl-0.4fzyo82mvyr", testNow, authchain.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if owner != "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5" {
			t.Fatalf("owner %s", owner)
		}
	}

	// The same chain, checked later than its expiry.
	_, err := authchain.Verify(ctx, []byte(referenceChainJSON), "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5",
		"dcl-0.4fzyo82mvyr", time.Date(3022, 1, 1, 0, 0, 0, 0, time.UTC), authchain.Options{})
	if authchain.Reason(err) != "expired" {
		t.Fatalf("after 3021: err = %v, want expired", err)
	}
}

func TestVerifyPublishedSimpleChains(t *testing.T) {
	for _, v := range personalSignVectors[3:] {
		t.Run(v.name, func(t *testing.T) {
			chain := authchain.Chain{
				{Type: authchain.TypeSigner, Payload: v.signer},
				{Type: authchain.TypeEcdsaSignedEntity, Payload: v.message, Signature: v.signature},
			}
			owner, err := authchain.Verify(context.Background(), authchaintest.JSON(chain), v.signer, v.message, testNow, authchain.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if owner != strings.ToLower(v.signer) {
				t.Fatalf("owner %s", owner)
			}
		})
	}
}

func TestPublicDelegationSignsAnyChallenge(t *testing.T) {
	chain := authchaintest.PublicDelegation().Sign("dcl-anything-at-all")
	owner, err := authchain.VerifyChain(context.Background(), chain, authchaintest.PublicOwnerAddress,
		"dcl-anything-at-all", testNow, authchain.Options{})
	if err != nil || owner != authchaintest.PublicOwnerAddress {
		t.Fatalf("VerifyChain = %q, %v", owner, err)
	}
}
