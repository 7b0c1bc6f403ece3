package authchain_test

import (
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
)

const challenge = "dcl-0.sl14r6vgr4l"

func newIdentity(t *testing.T) *authchaintest.Identity {
	t.Helper()
	id, err := authchaintest.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// freshChain is what the kernel sends: owner delegates to an ephemeral key
// for 10 minutes, the ephemeral key signs the challenge.
func freshChain(t *testing.T) (owner *authchaintest.Identity, eph *authchaintest.Identity, chain authchain.Chain) {
	owner, eph = newIdentity(t), newIdentity(t)
	return owner, eph, owner.Chain(eph, testNow.Add(10*time.Minute), challenge)
}

func verify(chain authchain.Chain, identified string, opts authchain.Options) (string, error) {
	return authchain.Verify(context.Background(), authchaintest.JSON(chain), identified, challenge, testNow, opts)
}

func TestVerifyFreshChains(t *testing.T) {
	owner, _, chain := freshChain(t)
	got, err := verify(chain, owner.Address, authchain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.ToLower(owner.Address) {
		t.Fatalf("owner %s, want %s", got, strings.ToLower(owner.Address))
	}

	// Godot's simple chain: the wallet signs the challenge itself.
	wallet := newIdentity(t)
	if got, err := verify(wallet.SimpleChain(challenge), strings.ToLower(wallet.Address), authchain.Options{}); err != nil || got != strings.ToLower(wallet.Address) {
		t.Fatalf("simple chain: %q, %v", got, err)
	}

	// An owner written in lower case in the SIGNER link.
	chain[0].Payload = strings.ToLower(chain[0].Payload)
	if _, err := verify(chain, owner.Address, authchain.Options{}); err != nil {
		t.Fatalf("lower-case owner: %v", err)
	}
}

// mutate returns a copy of chain with f applied.
func mutate(chain authchain.Chain, f func(authchain.Chain)) authchain.Chain {
	c := append(authchain.Chain{}, chain...)
	f(c)
	return c
}

// setV rewrites the recovery byte of a link's signature.
func setV(l *authchain.Link, v byte) {
	sig, err := hex.DecodeString(l.Signature[2:])
	if err != nil {
		panic(err)
	}
	sig[64] = v
	l.Signature = "0x" + hex.EncodeToString(sig)
}

func TestVerifyRejections(t *testing.T) {
	owner, eph, chain := freshChain(t)
	other := newIdentity(t)

	cases := []struct {
		name       string
		chain      authchain.Chain
		identified string
		reason     string
	}{
		{
			name: "forged one-link chain the reference accepts",
			chain: authchain.Chain{
				{Type: authchain.TypeSigner, Payload: challenge},
			},
			identified: owner.Address,
			reason:     "too_short",
		},
		{
			name: "one-link chain with a real address",
			chain: authchain.Chain{
				{Type: authchain.TypeSigner, Payload: owner.Address},
			},
			identified: owner.Address,
			reason:     "too_short",
		},
		{
			name: "SIGNER payload is not an address",
			chain: mutate(chain, func(c authchain.Chain) {
				c[0].Payload = challenge
			}),
			identified: challenge,
			reason:     "bad_address",
		},
		{
			name:       "identified as another address",
			chain:      chain,
			identified: other.Address,
			reason:     "wrong_owner",
		},
		{
			name:       "identified as nothing",
			chain:      chain,
			identified: "",
			reason:     "wrong_owner",
		},
		{
			name:       "chain of another wallet claiming our owner",
			chain:      mutate(other.Chain(eph, testNow.Add(time.Minute), challenge), func(c authchain.Chain) { c[0].Payload = owner.Address }),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name:       "signs another challenge",
			chain:      owner.Chain(eph, testNow.Add(time.Minute), "dcl-0.somethingelse"),
			identified: owner.Address,
			reason:     "wrong_payload",
		},
		{
			name:       "challenge differs only in case",
			chain:      owner.Chain(eph, testNow.Add(time.Minute), strings.ToUpper(challenge)),
			identified: owner.Address,
			reason:     "wrong_payload",
		},
		{
			name:       "expired ephemeral key",
			chain:      owner.Chain(eph, testNow.Add(-time.Minute), challenge),
			identified: owner.Address,
			reason:     "expired",
		},
		{
			name:       "expires this very millisecond",
			chain:      owner.Chain(eph, testNow, challenge),
			identified: owner.Address,
			reason:     "expired",
		},
		{
			name: "entity signed by the owner instead of the ephemeral key",
			chain: mutate(chain, func(c authchain.Chain) {
				c[2].Signature = owner.SignPersonal(challenge)
			}),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name: "delegation signed by another wallet",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Signature = other.SignPersonal(c[1].Payload)
			}),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name: "delegation tampered to extend the expiry",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = authchaintest.EphemeralMessage(eph.Address, testNow.Add(1000*time.Hour))
			}),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name: "delegation tampered to another ephemeral key",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = authchaintest.EphemeralMessage(other.Address, testNow.Add(10*time.Minute))
				c[2].Signature = other.SignPersonal(challenge)
			}),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name:       "v = 0x25 (3.4.x read it as 0)",
			chain:      mutate(chain, func(c authchain.Chain) { setV(&c[2], 0x25) }),
			identified: owner.Address,
			reason:     "bad_v",
		},
		{
			name:       "v = 29",
			chain:      mutate(chain, func(c authchain.Chain) { setV(&c[1], 29) }),
			identified: owner.Address,
			reason:     "bad_v",
		},
		{
			name:       "v = 2",
			chain:      mutate(chain, func(c authchain.Chain) { setV(&c[2], 2) }),
			identified: owner.Address,
			reason:     "bad_v",
		},
		{
			name:       "signature without 0x",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Signature = c[2].Signature[2:] }),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name:       "signature with a non-hex digit",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Signature = c[2].Signature[:10] + "zz" + c[2].Signature[12:] }),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name:       "signature with an odd number of digits",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Signature = c[2].Signature[:131] }),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name:       "signature one byte short",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Signature = c[2].Signature[:130] }),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name:       "r = 0",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Signature = "0x" + strings.Repeat("00", 32) + c[2].Signature[66:] }),
			identified: owner.Address,
			reason:     "bad_signature",
		},
		{
			name: "ephemeral address is not an address",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = "Decentraland Login\nEphemeral address: 0x1234\nExpiration: 3000-01-01T00:00:00.000Z"
				c[1].Signature = owner.SignPersonal(c[1].Payload)
			}),
			identified: owner.Address,
			reason:     "bad_address",
		},
		{
			name: "delegation without the expiration line",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = "Decentraland Login\nEphemeral address: " + eph.Address
				c[1].Signature = owner.SignPersonal(c[1].Payload)
			}),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name: "delegation with another address label",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = "Decentraland Login\nEphemeral addr: " + eph.Address + "\nExpiration: 3000-01-01T00:00:00.000Z"
				c[1].Signature = owner.SignPersonal(c[1].Payload)
			}),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name: "delegation with an unreadable date",
			chain: mutate(chain, func(c authchain.Chain) {
				c[1].Payload = "Decentraland Login\nEphemeral address: " + eph.Address + "\nExpiration: someday"
				c[1].Signature = owner.SignPersonal(c[1].Payload)
			}),
			identified: owner.Address,
			reason:     "malformed",
		},
		{
			name:       "ephemeral link last",
			chain:      chain[:2],
			identified: owner.Address,
			reason:     "bad_structure",
		},
		{
			name:       "signed entity in the middle",
			chain:      append(owner.SimpleChain(challenge), chain[2]),
			identified: owner.Address,
			reason:     "bad_structure",
		},
		{
			name:       "second SIGNER",
			chain:      authchain.Chain{chain[0], chain[0], chain[2]},
			identified: owner.Address,
			reason:     "bad_structure",
		},
		{
			name:       "first link not a SIGNER",
			chain:      authchain.Chain{chain[1], chain[2]},
			identified: owner.Address,
			reason:     "bad_structure",
		},
		{
			name:       "EIP-1654 entity without a contract verifier",
			chain:      mutate(chain, func(c authchain.Chain) { c[2].Type = authchain.TypeEIP1654SignedEntity }),
			identified: owner.Address,
			reason:     "eip1654_unavailable",
		},
		{
			name:       "EIP-1654 delegation without a contract verifier",
			chain:      mutate(chain, func(c authchain.Chain) { c[1].Type = authchain.TypeEIP1654Ephemeral }),
			identified: owner.Address,
			reason:     "eip1654_unavailable",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			owner, err := verify(tc.chain, tc.identified, authchain.Options{})
			if err == nil {
				t.Fatalf("accepted, owner %s", owner)
			}
			if got := authchain.Reason(err); got != tc.reason {
				t.Fatalf("reason %q, want %q (err: %v)", got, tc.reason, err)
			}
			var e *authchain.Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *authchain.Error", err)
			}
			if owner != "" {
				t.Fatalf("owner %q returned with an error", owner)
			}
		})
	}
}

func TestVerifyOwnerMismatchCanBeAllowed(t *testing.T) {
	owner, _, chain := freshChain(t)
	got, err := verify(chain, "0x0000000000000000000000000000000000000001", authchain.Options{AllowOwnerMismatch: true})
	if err != nil || got != strings.ToLower(owner.Address) {
		t.Fatalf("Verify = %q, %v", got, err)
	}
}

// Wallets that write v as 0/1 are accepted, as upstream maps them to 27/28.
func TestVerifyAcceptsVZeroAndOne(t *testing.T) {
	owner, _, chain := freshChain(t)
	for i := 1; i <= 2; i++ {
		sig, _ := hex.DecodeString(chain[i].Signature[2:])
		setV(&chain[i], sig[64]-27)
	}
	if _, err := verify(chain, owner.Address, authchain.Options{}); err != nil {
		t.Fatal(err)
	}
}

// Upstream accepts high-S signatures (no EIP-2 rule for personal_sign); so do
// we, or some wallets' signatures would fail.
func TestVerifyAcceptsHighS(t *testing.T) {
	owner, _, chain := freshChain(t)
	n, _ := new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
	sig, _ := hex.DecodeString(chain[2].Signature[2:])
	s := new(big.Int).SetBytes(sig[32:64])
	s.Sub(n, s).FillBytes(sig[32:64])
	sig[64] = 27 + 28 - sig[64] // the negated S recovers with the other parity
	chain[2].Signature = "0x" + hex.EncodeToString(sig)
	if _, err := verify(chain, owner.Address, authchain.Options{}); err != nil {
		t.Fatal(err)
	}
}

// The delegation's '\r' are dropped before checking its signature (a client
// on Windows line endings still passes), but an entity payload is taken as is.
func TestVerifyCarriageReturns(t *testing.T) {
	owner, eph := newIdentity(t), newIdentity(t)
	msg := authchaintest.EphemeralMessage(eph.Address, testNow.Add(time.Hour))
	d := owner.DelegateMessage(eph, msg)
	d.Links[1].Payload = strings.ReplaceAll(msg, "\n", "\r\n")
	if _, err := verify(d.Sign(challenge), owner.Address, authchain.Options{}); err != nil {
		t.Fatalf("CRLF delegation: %v", err)
	}

	withCR := challenge + "\r"
	chain := d.Sign(withCR)
	chain[2].Signature = eph.SignPersonal(challenge) // signed without the \r
	_, err := authchain.VerifyChain(context.Background(), chain, owner.Address, withCR, testNow, authchain.Options{})
	if authchain.Reason(err) != "bad_signature" {
		t.Fatalf("entity '\\r' must be signed: err = %v", err)
	}
}

// Old clients wrote the expiry with Date.toString(); some with dates only.
func TestVerifyExpiryFormats(t *testing.T) {
	owner, eph := newIdentity(t), newIdentity(t)
	for _, exp := range []string{
		"2026-11-23T12:00:00.001Z",
		"2026-11-23T13:00:01+01:00",
		"2026-11-24",
		"Tue Aug 06 7112 10:14:51 GMT-0300 (Argentina Standard Time)",
		"Mon Nov 23 2026 09:30:00 GMT-0300",
		"Mon, 23 Nov 2026 12:00:01 GMT",
	} {
		msg := "Decentraland Login\nEphemeral address: " + eph.Address + "\nExpiration: " + exp
		if _, err := verify(owner.DelegateMessage(eph, msg).Sign(challenge), owner.Address, authchain.Options{}); err != nil {
			t.Errorf("expiration %q: %v", exp, err)
		}
	}
	for _, exp := range []string{
		"2026-11-23T12:00:00.000Z",
		"2026-11-23",
		"Mon Nov 23 2026 08:59:59 GMT-0300 (Argentina Standard Time)",
	} {
		msg := "Decentraland Login\nEphemeral address: " + eph.Address + "\nExpiration: " + exp
		_, err := verify(owner.DelegateMessage(eph, msg).Sign(challenge), owner.Address, authchain.Options{})
		if authchain.Reason(err) != "expired" {
			t.Errorf("expiration %q: err = %v, want expired", exp, err)
		}
	}
}

func TestVerifyChainAppliesLimits(t *testing.T) {
	owner, eph, chain := freshChain(t)
	long := owner.Chain(eph, testNow.Add(time.Minute), strings.Repeat("x", 100))
	_, err := authchain.VerifyChain(context.Background(), long, owner.Address, strings.Repeat("x", 100), testNow,
		authchain.Options{Limits: authchain.Limits{MaxPayloadBytes: 99}})
	if authchain.Reason(err) != "too_large" {
		t.Fatalf("payload over limit: %v", err)
	}
	many := append(authchain.Chain{}, chain[0])
	for range 10 {
		many = append(many, chain[1])
	}
	many = append(many, chain[2])
	if _, err := authchain.VerifyChain(context.Background(), many, owner.Address, challenge, testNow, authchain.Options{}); authchain.Reason(err) != "too_large" {
		t.Fatalf("12 links: %v", err)
	}
}

func TestReasonLabels(t *testing.T) {
	if authchain.Reason(nil) != "" {
		t.Fatal("Reason(nil)")
	}
	if authchain.Reason(context.Canceled) != "other" {
		t.Fatal("Reason of a foreign error")
	}
	if authchain.Reason(&authchain.Error{Kind: authchain.ErrExpired, Link: 1}) != "expired" {
		t.Fatal("Reason of an *Error")
	}
	wrapped := &authchain.Error{Kind: authchain.ErrEIP1654Failed, Link: -1, Cause: context.DeadlineExceeded}
	if authchain.Reason(wrapped) != "eip1654_error" || !errors.Is(wrapped, context.DeadlineExceeded) {
		t.Fatal("an *Error must expose its kind first and its cause too")
	}
}
