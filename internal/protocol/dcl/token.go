package dcl

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/golang-jwt/jwt/v5"
)

// The optional ?access_token= check (spec section 2.3). From 2022-04 to
// 2023-09 Archipelago minted ws-room connection strings
//
//	ws-room:<service url>/rooms/<roomId>?access_token=<jwt.sign({peerId}, secret, {audience: url})>
//
// (HS256, claims peerId, aud, iat). Today's reference checks nothing and
// ignores the query; so does Switchboard unless a secret is configured.
// With one, the token must be an HS256 JWT signed with it, unexpired if it
// has an exp, whose aud names this room: its path must equal the request
// path (the scheme and host are not compared, since a proxy may sit in
// front). A peerId claim that is an address must be the address the peer
// then identifies as.

var errNoToken = errors.New("no access_token in the URL")

// checkAccessToken validates tok for a request to path (escaped, without
// query) and returns its peerId claim ("" if none).
func checkAccessToken(secret []byte, tok, path string) (string, error) {
	if tok == "" {
		return "", errNoToken
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		return "", err
	}
	aud, err := claims.GetAudience()
	if err != nil {
		return "", err
	}
	ok := false
	for _, a := range aud {
		if u, err := url.Parse(a); err == nil && u.EscapedPath() == path {
			ok = true
			break
		}
	}
	if !ok {
		return "", fmt.Errorf("token audience %q does not name %s", []string(aud), path)
	}
	peerID, _ := claims["peerId"].(string)
	return peerID, nil
}
