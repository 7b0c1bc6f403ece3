// Package pushersign computes and checks the signatures of the Pusher
// protocol: REST request signing (auth_signature, body_md5), private and
// presence channel authorisation strings and user sign-in strings.
//
// Both the server (to verify) and the load generator (to sign) use it, so the
// two sides can never disagree about the string that is signed.
package pushersign

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AuthVersion is the only REST auth_version the protocol defines.
const AuthVersion = "1.0"

// BodyMD5 returns the lower-case hex MD5 of body.
func BodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// HMACHex returns hex(HMAC-SHA256(secret, msg)).
func HMACHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// Equal compares two hex signatures in constant time, so that a verifier does
// not leak how many leading characters of a forged signature were right.
// Hex case is significant: the protocol only ever produces lower case.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// RESTSignature returns hex HMAC-SHA256(secret, "METHOD\npath\nsortedquery")
// where sortedquery is every param except auth_signature, keys lower-cased,
// sorted, joined k=v with & (not URL-escaped). The method is upper-cased.
//
// A key given more than once contributes its first value only: the protocol
// has no repeated parameters, and taking one value keeps the string
// well-defined for a verifier faced with a hostile query.
func RESTSignature(secret, method, path string, query url.Values) string {
	return HMACHex(secret, restStringToSign(method, path, query))
}

// restStringToSign builds the exact string that RESTSignature signs; it is
// separate so tests can check the string itself against the spec's example.
func restStringToSign(method, path string, query url.Values) string {
	type kv struct{ k, v string }
	pairs := make([]kv, 0, len(query))
	for k, vs := range query {
		lk := strings.ToLower(k)
		if lk == "auth_signature" {
			continue
		}
		v := ""
		if len(vs) > 0 {
			v = vs[0]
		}
		pairs = append(pairs, kv{lk, v})
	}
	// Sort by key, then value, so the result does not depend on map order
	// even when two keys differ only in case.
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// SignRESTQuery adds auth_key, auth_timestamp, auth_version=1.0, body_md5
// (when body non-empty) and auth_signature to q. Any auth_signature or
// body_md5 already in q is replaced so that re-signing a query is safe.
func SignRESTQuery(key, secret, method, path string, q url.Values, body []byte, now time.Time) {
	q.Del("auth_signature")
	q.Set("auth_key", key)
	q.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	q.Set("auth_version", AuthVersion)
	if len(body) > 0 {
		q.Set("body_md5", BodyMD5(body))
	} else {
		q.Del("body_md5")
	}
	q.Set("auth_signature", RESTSignature(secret, method, path, q))
}

// ChannelAuth returns "key:hex(HMAC-SHA256(secret, socketID+":"+channel[+":"+channelData]))";
// channelData "" means none (private channels); presence channels pass the
// exact channel_data string the client will send.
func ChannelAuth(key, secret, socketID, channel, channelData string) string {
	msg := socketID + ":" + channel
	if channelData != "" {
		msg += ":" + channelData
	}
	return key + ":" + HMACHex(secret, msg)
}

// UserAuth returns "key:hex(HMAC-SHA256(secret, socketID+"::user::"+userData))".
func UserAuth(key, secret, socketID, userData string) string {
	return key + ":" + HMACHex(secret, socketID+"::user::"+userData)
}
