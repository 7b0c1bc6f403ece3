package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// The security model (docs/console.md):
//
//   - Off unless console.enabled; the token is then required and differs
//     from every app secret (internal/config).
//   - Only loopback clients unless allow_remote; the client address is the
//     server's (trusted proxies and their header, else the TCP peer), so a
//     request relayed by a trusted proxy counts as the client it names.
//   - Every route but the login form wants the token: "Authorization:
//     Bearer <token>", or the session cookie the login form sets. The
//     cookie holds an HMAC of a fixed label under the token, not the token;
//     it is HttpOnly (no script reads it) and SameSite=Strict (no other
//     site's page sends it), Secure on TLS. Every comparison is constant
//     time.
//   - State-changing requests (login, logout, publish) must come from the
//     console's own origin when the browser says where it comes from.

const cookieName = "switchboard_console"

// sessionValue is the cookie's value for token.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("switchboard console session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// guard refuses non-loopback clients (unless allowed) and cross-origin
// state changes; the token is checked by each handler, which knows how to
// say no (a login page or JSON).
func (c *Console) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.opts.AllowRemote && !c.clientAddr(r).IsLoopback() {
			writeJSONError(w, http.StatusForbidden, "the console answers loopback clients only (console.allow_remote)")
			return
		}
		if r.Method == http.MethodPost && !sameOrigin(r) {
			writeJSONError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin") // "no-referrer" would make browsers send "Origin: null" on POST
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		next(w, r)
	}
}

// requireToken answers 401 JSON to a request without the token.
func (c *Console) requireToken(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard console"`)
			writeJSONError(w, http.StatusUnauthorized, "console token required")
			return
		}
		next(w, r)
	}
}

func (c *Console) clientAddr(r *http.Request) netip.Addr {
	if c.opts.ClientAddr != nil {
		return c.opts.ClientAddr(r)
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// sameOrigin accepts a request whose Origin (or, without one, Referer)
// names the host it was sent to; a request with neither (curl, a script)
// has no browser to forge it and is accepted.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// authorized reports whether r carries the token or the session cookie.
func (c *Console) authorized(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		return ok && equal(tok, c.opts.Token)
	}
	ck, err := r.Cookie(cookieName)
	return err == nil && equal(ck.Value, c.session)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// login checks the form's token and sets the session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		c.loginPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if !equal(r.PostForm.Get("token"), c.opts.Token) {
		c.opts.Logger.Warn("console: login with a wrong token", "client", c.clientAddr(r))
		c.loginPage(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: c.session, Path: c.opts.Path,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int((12 * time.Hour).Seconds()),
	})
	c.opts.Logger.Info("console: signed in", "client", c.clientAddr(r))
	http.Redirect(w, r, c.opts.Path, http.StatusSeeOther)
}

// logout clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: c.opts.Path, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, c.opts.Path, http.StatusSeeOther)
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard console: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{{.Path}}/style.css"></head>
<body class="login"><form method="post" action="{{.Path}}/login" id="login">
<h1>Switchboard console</h1>
<p>Enter the console token (<code>console.token</code> in the configuration).</p>
{{if .Message}}<p class="error" id="login-error">{{.Message}}</p>{{end}}
<label>Token <input type="password" name="token" id="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button>
</form></body></html>
`))

// loginPage answers code with the login form.
func (c *Console) loginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = loginTemplate.Execute(w, struct{ Path, Message string }{c.opts.Path, msg})
}
