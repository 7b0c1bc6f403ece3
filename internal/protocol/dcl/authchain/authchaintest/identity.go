// Package authchaintest builds Decentraland auth chains the way the clients
// do (@dcl/crypto Authenticator.createAuthChain / signPayload), for tests of
// authchain and of the ws-room server: fresh wallets, ephemeral keys with any
// expiry, and the public test identity that stays valid until the year 3021.
package authchaintest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
)

// Identity is a secp256k1 key with its Ethereum address.
type Identity struct {
	Key *secp256k1.PrivateKey
	// Address is EIP-55 checksummed, as wallet libraries print it.
	Address string
}

// NewIdentity makes a random identity.
func NewIdentity() (*Identity, error) {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	return identityOf(k), nil
}

// IdentityFromHex loads a private key given as (0x-)hex.
func IdentityFromHex(s string) (*Identity, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("authchaintest: want 32 hex bytes, got %q", s)
	}
	return identityOf(secp256k1.PrivKeyFromBytes(b)), nil
}

func identityOf(k *secp256k1.PrivateKey) *Identity {
	return &Identity{Key: k, Address: ChecksumAddress(authchain.AddressOf(k.PubKey()))}
}

// SignPersonalRaw returns the 65-byte personal_sign signature r‖s‖v of msg,
// v in {27, 28}. decred signs per RFC 6979, so the bytes equal @dcl/crypto's.
func (id *Identity) SignPersonalRaw(msg string) []byte {
	compact := ecdsa.SignCompact(id.Key, authchain.PersonalMessageHash(msg), false) // [27+recid] r s
	return append(compact[1:], compact[0])
}

// SignPersonal is SignPersonalRaw as wallets print it: 0x + 130 hex digits.
func (id *Identity) SignPersonal(msg string) string {
	return "0x" + hex.EncodeToString(id.SignPersonalRaw(msg))
}

// EphemeralMessage is the delegation text owners sign for an ephemeral key
// (Authenticator.getEphemeralMessage, expiration in Date.toISOString form).
func EphemeralMessage(ephemeralAddress string, expiration time.Time) string {
	return "Decentraland Login\nEphemeral address: " + ephemeralAddress +
		"\nExpiration: " + expiration.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Delegation is an owner's stored login: SIGNER and ECDSA_EPHEMERAL links,
// plus the ephemeral key that signs payloads (an AuthIdentity upstream).
type Delegation struct {
	Links     authchain.Chain
	Ephemeral *Identity
}

// Delegate makes owner sign a delegation to ephemeral until expiration.
func (id *Identity) Delegate(ephemeral *Identity, expiration time.Time) Delegation {
	return id.DelegateMessage(ephemeral, EphemeralMessage(ephemeral.Address, expiration))
}

// DelegateMessage is Delegate with a hand-written delegation message, for
// tests of odd expiry formats or payload layouts.
func (id *Identity) DelegateMessage(ephemeral *Identity, message string) Delegation {
	return Delegation{
		Links: authchain.Chain{
			{Type: authchain.TypeSigner, Payload: id.Address},
			{Type: authchain.TypeEcdsaEphemeral, Payload: message, Signature: id.SignPersonal(message)},
		},
		Ephemeral: ephemeral,
	}
}

// Sign appends the ECDSA_SIGNED_ENTITY link of payload (Authenticator.signPayload):
// what the kernel, Unity and the ws-room e2e client send.
func (d Delegation) Sign(payload string) authchain.Chain {
	out := append(authchain.Chain{}, d.Links...)
	return append(out, authchain.Link{
		Type: authchain.TypeEcdsaSignedEntity, Payload: payload, Signature: d.Ephemeral.SignPersonal(payload),
	})
}

// Chain is the usual three-link chain: a fresh delegation to ephemeral
// (valid until expiration) that signs payload.
func (id *Identity) Chain(ephemeral *Identity, expiration time.Time, payload string) authchain.Chain {
	return id.Delegate(ephemeral, expiration).Sign(payload)
}

// SimpleChain is the two-link chain the Godot explorer sends: the wallet
// signs payload itself.
func (id *Identity) SimpleChain(payload string) authchain.Chain {
	return authchain.Chain{
		{Type: authchain.TypeSigner, Payload: id.Address},
		{Type: authchain.TypeEcdsaSignedEntity, Payload: payload, Signature: id.SignPersonal(payload)},
	}
}

// JSON encodes a chain as clients put it in auth_chain_json.
func JSON(c authchain.Chain) []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a slice of string structs always encodes
	}
	return b
}

// ChecksumAddress returns the EIP-55 mixed-case form of a 0x address.
func ChecksumAddress(addr string) string {
	lower := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(addr, "0x"), "0X"))
	h := hex.EncodeToString(authchain.Keccak256([]byte(lower)))
	out := []byte("0x" + lower)
	for i := range lower {
		if c := lower[i]; c >= 'a' && c <= 'f' && h[i] >= '8' {
			out[2+i] = c - 'a' + 'A'
		}
	}
	return string(out)
}
