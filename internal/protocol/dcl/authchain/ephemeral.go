package authchain

import (
	"strings"
	"time"
)

// Line prefixes of the ephemeral delegation message that Decentraland wallets
// sign (Authenticator.getEphemeralMessage):
//
//	Decentraland Login
//	Ephemeral address: 0x84452bbFA4ca14B7828e2F3BBd106A2bD495CD34
//	Expiration: 3021-10-16T22:32:29.626Z
const (
	ephemeralAddressPrefix = "Ephemeral address: "
	expirationPrefix       = "Expiration: "
)

// ephemeralDelegation is the parsed payload of an *_EPHEMERAL link.
type ephemeralDelegation struct {
	message    string // the payload without '\r': what was signed
	address    string // the delegate, as written (not lower-cased)
	expiration time.Time
}

// parseEphemeralPayload reads an ephemeral link payload the way @dcl/crypto
// does: drop every '\r' (the signature covers the message without them),
// split on '\n', read the address from line 2 and the expiration from line 3.
// Upstream 3.4.x cut fixed-length prefixes without checking them; newer
// versions require them, and so do we. The delegate must be a valid address
// (upstream never checked).
func parseEphemeralPayload(payload string) (ephemeralDelegation, *Error) {
	msg := strings.ReplaceAll(payload, "\r", "")
	lines := strings.SplitN(msg, "\n", 4) // later lines, if any, are only signed
	if len(lines) < 3 {
		return ephemeralDelegation{}, chainErr(ErrMalformed, "ephemeral payload has %d lines, want at least 3", len(lines))
	}
	addr, ok := strings.CutPrefix(lines[1], ephemeralAddressPrefix)
	if !ok {
		return ephemeralDelegation{}, chainErr(ErrMalformed, "ephemeral payload line 2 does not start with %q", ephemeralAddressPrefix)
	}
	if !IsAddress(addr) {
		return ephemeralDelegation{}, chainErr(ErrBadAddress, "ephemeral address %.64q", addr)
	}
	expStr, ok := strings.CutPrefix(lines[2], expirationPrefix)
	if !ok {
		return ephemeralDelegation{}, chainErr(ErrMalformed, "ephemeral payload line 3 does not start with %q", expirationPrefix)
	}
	exp, ok := ParseExpiration(expStr)
	if !ok {
		// Upstream's Date.parse gives NaN, which then fails as "expired". We
		// call it malformed: it tells a garbage date from an old key.
		return ephemeralDelegation{}, chainErr(ErrMalformed, "unreadable expiration %.64q", expStr)
	}
	return ephemeralDelegation{message: msg, address: addr, expiration: exp}, nil
}

// ParseExpiration parses the "Expiration:" value of an ephemeral payload. It
// takes the forms of JavaScript's Date.parse that Decentraland identities are
// known to carry:
//   - Date.toISOString(), what current clients write: 2020-01-20T22:57:11.334Z
//     (RFC 3339, also with an offset or without fraction);
//   - ISO date-time without offset: Date.parse reads server-local time, we
//     read UTC (the reference runs in UTC containers);
//   - ISO date only, UTC midnight as in Date.parse: 2020-01-20;
//   - Date.toString(), written by old clients (`${expiration}`) and found in
//     the official EIP-1654 vectors: Tue Aug 06 7112 10:14:51 GMT-0300
//     (Argentina Standard Time); the " (zone name)" suffix is cut first;
//   - Date.toUTCString(): Tue, 06 Aug 7112 13:14:51 GMT.
//
// Other Date.parse inputs ("January 1, 3000"...) are refused: no Decentraland
// client writes them.
func ParseExpiration(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, " ("); i > 0 && strings.HasSuffix(s, ")") {
		s = s[:i]
	}
	layouts := [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04",
		"2006-01-02",
		"Mon Jan 02 2006 15:04:05 GMT-0700",
		"Mon Jan 02 2006 15:04:05 GMT",
		time.RFC1123,
		time.RFC1123Z,
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// notExpired is upstream's `expiration > now` on millisecond timestamps:
// strict, so a key is already dead at its expiration millisecond.
func notExpired(exp, now time.Time) bool {
	return exp.UnixMilli() > now.UnixMilli()
}
