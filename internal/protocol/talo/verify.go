package talo

import (
	"context"
	"errors"
	"strconv"
)

var (
	errUnknownKeyVersion = errors.New("talo: unknown verification key version")
	errSignatureMismatch = errors.New("talo: signature does not match")
	errSignatureStale    = errors.New("talo: signature timestamp out of window")
	errSignatureReplayed = errors.New("talo: signature request id reused")
)

// verifySignature checks a signature over body for an alias of a game:
// known key version, payload hash, HMAC, |now - timestamp| within
// SignatureMaxSkew, not older than SignatureMaxBehind behind the latest
// timestamp seen for the alias, and a request id never used before (both
// remembered cluster-wide for SignatureReplayTTL).
func (s *Server) verifySignature(ctx context.Context, gameID, aliasID int64, header string, body []byte) error {
	if header == "" {
		return errBadSignature
	}
	sig, err := parseSignature(header)
	if err != nil {
		return err
	}
	secret, err := s.st.VerificationSecret(ctx, gameID, sig.version)
	if err != nil {
		return errUnknownKeyVersion
	}
	if !sig.checkMAC(secret, body) {
		return errSignatureMismatch
	}
	now := s.now().UnixMilli()
	if d := now - sig.timestamp; d > s.opts.SignatureMaxSkew.Milliseconds() || -d > s.opts.SignatureMaxSkew.Milliseconds() {
		return errSignatureStale
	}
	alias := strconv.FormatInt(aliasID, 10)
	tsKey := "verification:ts:" + alias
	if v, ok, err := s.kv.KVGet(ctx, kvNamespace, tsKey); err == nil && ok {
		latest, _ := strconv.ParseInt(string(v), 10, 64)
		if latest-sig.timestamp > s.opts.SignatureMaxBehind.Milliseconds() {
			return errSignatureStale
		}
		if sig.timestamp < latest {
			sig.timestamp = latest // keep the latest
		}
	} else if err != nil {
		return err
	}
	fresh, err := s.kv.KVSetNX(ctx, kvNamespace, "verification:rid:"+alias+":"+sig.rid, []byte{1}, s.opts.SignatureReplayTTL)
	if err != nil {
		return err
	}
	if !fresh {
		return errSignatureReplayed
	}
	return s.kv.KVSet(ctx, kvNamespace, tsKey, []byte(strconv.FormatInt(sig.timestamp, 10)), s.opts.SignatureReplayTTL)
}
