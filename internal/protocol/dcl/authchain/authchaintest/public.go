package authchaintest

import (
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain"
)

// The public test identity of the Decentraland crypto fixtures (crypto-fetch
// identity.ts, spec section 10.7). Its owner key is unknown, but the owner
// signed a delegation to an ephemeral key that is published and valid until
// 3021: anyone can sign any challenge as PublicOwnerAddress with it.
const (
	PublicOwnerAddress        = "0x7949f9f239d1a0816ce5eb364a1f588ae9cc1bf5"
	PublicEphemeralAddress    = "0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34"
	PublicEphemeralKey        = "0xbc453a92d9baeb3d10294cbc1d48ef6738f718fd31b4eb8085efe7b311299399"
	PublicDelegationMessage   = "Decentraland Login\nEphemeral address: 0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34\nExpiration: 3021-10-16T22:32:29.626Z"
	PublicDelegationSignature = "0x39dd4ddf131ad2435d56c81c994c4417daef5cf5998258027ef8a1401470876a1365a6b79810dc0c4a2e9352befb63a9e4701d67b38007d83ffc4cd2b7a38ad51b"
)

// PublicDelegation is the stored login of the public test identity.
func PublicDelegation() Delegation {
	eph, err := IdentityFromHex(PublicEphemeralKey)
	if err != nil {
		panic(err) // constant input
	}
	return Delegation{
		Links: authchain.Chain{
			{Type: authchain.TypeSigner, Payload: PublicOwnerAddress},
			{Type: authchain.TypeEcdsaEphemeral, Payload: PublicDelegationMessage, Signature: PublicDelegationSignature},
		},
		Ephemeral: eph,
	}
}
