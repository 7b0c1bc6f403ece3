package authchain

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per rejection reason. Every error returned by Parse,
// Verify and VerifyChain wraps exactly one of them (test with errors.Is), and
// Reason maps it to a short, stable metric label.
var (
	// ErrMalformed: not JSON, not the link schema, bad hex, or an ephemeral
	// payload without the "Ephemeral address:" / "Expiration:" lines.
	ErrMalformed = errors.New("malformed auth chain")
	// ErrTooLarge: over one of the Limits (bytes, links, field length).
	ErrTooLarge = errors.New("auth chain exceeds limits")
	// ErrTooShort: fewer than two links (the reference's forgeable one-link chain).
	ErrTooShort = errors.New("auth chain too short")
	// ErrBadStructure: links out of order: SIGNER first and only first, then
	// only *_EPHEMERAL links, and a *_SIGNED_ENTITY last.
	ErrBadStructure = errors.New("auth chain links out of order")
	// ErrBadAddress: the owner or an ephemeral address is not 0x + 40 hex.
	ErrBadAddress = errors.New("invalid address in auth chain")
	// ErrWrongOwner: the chain owner is not the address the peer identified as.
	ErrWrongOwner = errors.New("auth chain owner differs from the identified address")
	// ErrWrongPayload: the last link signs something other than the challenge.
	ErrWrongPayload = errors.New("auth chain signs another payload")
	// ErrExpired: an ephemeral key's expiration is not after now (or unparseable as a date).
	ErrExpired = errors.New("ephemeral key expired")
	// ErrBadV: a personal signature's recovery byte is not 0, 1, 27 or 28.
	ErrBadV = errors.New("invalid signature recovery byte")
	// ErrBadSignature: recovery failed, or the recovered signer (or the
	// contract wallet) is not the current authority.
	ErrBadSignature = errors.New("invalid signature")
	// ErrEIP1654Unavailable: an EIP-1654 link, but no ContractVerifier is configured.
	ErrEIP1654Unavailable = errors.New("EIP-1654 contract signatures not supported: no Ethereum RPC configured")
	// ErrEIP1654Failed: the ContractVerifier could not answer (RPC down, timeout...).
	ErrEIP1654Failed = errors.New("EIP-1654 contract signature check failed")
)

// Reason returns a short stable label for a rejection, for metrics:
// "malformed", "too_large", "too_short", "bad_structure", "bad_address",
// "wrong_owner", "wrong_payload", "expired", "bad_v", "bad_signature",
// "eip1654_unavailable", "eip1654_error". It returns "" for nil and "other"
// for an error that is none of these (a canceled context, for instance).
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrTooShort):
		return "too_short"
	case errors.Is(err, ErrBadStructure):
		return "bad_structure"
	case errors.Is(err, ErrBadAddress):
		return "bad_address"
	case errors.Is(err, ErrWrongOwner):
		return "wrong_owner"
	case errors.Is(err, ErrWrongPayload):
		return "wrong_payload"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrBadV):
		return "bad_v"
	case errors.Is(err, ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, ErrEIP1654Unavailable):
		return "eip1654_unavailable"
	case errors.Is(err, ErrEIP1654Failed):
		return "eip1654_error"
	default:
		return "other"
	}
}

// Error is the concrete error of this package: a reason (one of the sentinel
// errors), where in the chain it happened, and a detail for the log line.
type Error struct {
	Kind     error    // one of the Err* sentinels
	Link     int      // index of the offending link, -1 for the chain as a whole
	LinkType LinkType // type of that link, "" when Link is -1 or the type was unreadable
	Detail   string   // human-readable specifics, never secret material
	Cause    error    // underlying error, if any (hex, JSON, RPC...)
}

func (e *Error) Error() string {
	msg := "authchain: "
	if e.Link >= 0 {
		msg += fmt.Sprintf("link %d", e.Link)
		if e.LinkType != "" {
			msg += fmt.Sprintf(" (%s)", e.LinkType)
		}
		msg += ": "
	}
	msg += e.Kind.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap exposes both the reason and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// chainErr builds an error about the chain as a whole.
func chainErr(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Link: -1, Detail: fmt.Sprintf(format, args...)}
}

// linkErr builds an error about link i.
func linkErr(kind error, i int, l Link, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Link: i, LinkType: l.Type, Detail: fmt.Sprintf(format, args...), Cause: cause}
}
