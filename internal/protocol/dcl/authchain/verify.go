package authchain

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Options tune Verify and VerifyChain. The zero value is the strict default:
// default limits, owner must equal the identified address, EIP-1654 links
// rejected.
type Options struct {
	// Limits bound parsing; zero fields take DefaultLimits.
	Limits Limits
	// Contracts checks EIP-1654 (contract wallet) links. nil rejects them
	// with ErrEIP1654Unavailable, which the caller should log: that user's
	// wallet cannot join until an Ethereum RPC is configured.
	Contracts ContractVerifier
	// AllowOwnerMismatch skips the check that the chain owner is the
	// expected address, which the reference server never made. Keep it off.
	AllowOwnerMismatch bool
}

// Verify parses chainJSON (the auth_chain_json of a WsSignedChallenge) and
// checks that it is a valid chain, owned by expectedAddress (the address of
// the peer's WsIdentification; compared case-insensitively), whose last link
// signs challenge exactly. now decides ephemeral key expiry.
//
// It returns the owner address in lower case: the address the room uses for
// the peer. On failure the error is an *Error wrapping one of the Err*
// sentinels; Reason(err) gives its metric label.
func Verify(ctx context.Context, chainJSON []byte, expectedAddress, challenge string, now time.Time, opts Options) (owner string, err error) {
	chain, err := Parse(chainJSON, opts.Limits)
	if err != nil {
		return "", err
	}
	return VerifyChain(ctx, chain, expectedAddress, challenge, now, opts)
}

// VerifyChain is Verify on an already parsed chain (for instance one rebuilt
// from signed-fetch headers). payload is what the last link must sign.
//
// The cheap structural rules run first, so a bogus chain costs no signature
// recovery and no RPC:
//  1. every link passes the schema and size checks of Parse;
//  2. at least two links: SIGNER, then *_EPHEMERAL links only, then one
//     *_SIGNED_ENTITY (the reference accepted a lone SIGNER whose payload was
//     the challenge: anyone could log in as the challenge string);
//  3. the SIGNER payload is an address, and equals expectedAddress unless
//     AllowOwnerMismatch;
//  4. the last payload equals payload (case-sensitive, as upstream's final
//     authority check).
//
// Then each link is checked in order as in @dcl/crypto: its signer must be the
// current authority (case-insensitive), and it hands authority on to the
// ephemeral address it names.
func VerifyChain(ctx context.Context, chain Chain, expectedAddress, payload string, now time.Time, opts Options) (owner string, err error) {
	if err := checkShape(chain, opts.Limits.withDefaults()); err != nil {
		return "", err
	}
	owner = chain[0].Payload
	if !IsAddress(owner) {
		return "", linkErr(ErrBadAddress, 0, chain[0], nil, "owner %.64q", owner)
	}
	if !opts.AllowOwnerMismatch && !strings.EqualFold(owner, expectedAddress) {
		return "", linkErr(ErrWrongOwner, 0, chain[0], nil, "chain owner %s, identified as %.64q", owner, expectedAddress)
	}
	last := len(chain) - 1
	if chain[last].Payload != payload {
		return "", linkErr(ErrWrongPayload, last, chain[last], nil, "signed payload %.64q, want %.64q", chain[last].Payload, payload)
	}

	authority := owner
	for i := 1; i < len(chain); i++ {
		next, e := verifyLink(ctx, chain[i], authority, now, opts.Contracts)
		if e != nil {
			e.Link, e.LinkType = i, chain[i].Type
			return "", e
		}
		authority = next
	}
	return strings.ToLower(owner), nil
}

// checkShape applies the per-link schema and the strict link order.
func checkShape(chain Chain, lim Limits) error {
	if len(chain) > lim.MaxLinks {
		return chainErr(ErrTooLarge, "%d links, limit %d", len(chain), lim.MaxLinks)
	}
	for i, l := range chain {
		if err := checkLink(i, l, lim); err != nil {
			return err
		}
	}
	if len(chain) < 2 {
		return chainErr(ErrTooShort, "%d link(s), want at least 2", len(chain))
	}
	for i, l := range chain {
		var fits bool
		switch {
		case i == 0:
			fits = l.Type == TypeSigner
		case i == len(chain)-1:
			fits = l.Type.isSignedEntity()
		default:
			fits = l.Type.isEphemeral()
		}
		if !fits {
			return linkErr(ErrBadStructure, i, l, nil, "want SIGNER, then *_EPHEMERAL links, then a *_SIGNED_ENTITY")
		}
	}
	return nil
}

// verifyLink checks one non-SIGNER link against the current authority and
// returns the next authority. Errors come back with Link unset for the caller
// to fill in.
func verifyLink(ctx context.Context, l Link, authority string, now time.Time, cv ContractVerifier) (string, *Error) {
	switch l.Type {
	case TypeEcdsaEphemeral, TypeEIP1654Ephemeral:
		d, e := parseEphemeralPayload(l.Payload)
		if e != nil {
			return "", e
		}
		if !notExpired(d.expiration, now) {
			return "", chainErr(ErrExpired, "expired at %s, now %s",
				d.expiration.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
		}
		if l.Type == TypeEcdsaEphemeral {
			e = checkPersonalSignature(d.message, l.Signature, authority)
		} else {
			e = checkContractSignature(ctx, cv, authority, d.message, l.Signature)
		}
		if e != nil {
			return "", e
		}
		return d.address, nil

	case TypeEcdsaSignedEntity:
		// Unlike ephemeral payloads, '\r' is kept: upstream signs it as is.
		if e := checkPersonalSignature(l.Payload, l.Signature, authority); e != nil {
			return "", e
		}
		return l.Payload, nil

	case TypeEIP1654SignedEntity:
		if e := checkContractSignature(ctx, cv, authority, l.Payload, l.Signature); e != nil {
			return "", e
		}
		return l.Payload, nil
	}
	// checkShape lets no other type through.
	return "", chainErr(ErrBadStructure, "unexpected link type")
}

// checkPersonalSignature requires that sigHex (0x + 130 hex) over msg was
// made by authority's key.
func checkPersonalSignature(msg, sigHex, authority string) *Error {
	sig, err := decodeHexSignature(sigHex)
	if err != nil {
		return &Error{Kind: ErrMalformed, Link: -1, Cause: err}
	}
	signer, err := RecoverPersonalSigner(msg, sig)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return &Error{Kind: ErrBadSignature, Link: -1, Cause: err}
	}
	if !strings.EqualFold(signer, authority) {
		return chainErr(ErrBadSignature, "signed by %s, want %s", signer, strings.ToLower(authority))
	}
	return nil
}
