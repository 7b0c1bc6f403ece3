package talo

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// Rate-limit buckets of the HTTP routes (spec section 7).
const (
	bucketNone    = ""
	bucketAuth    = "auth"
	bucketDefault = "default"
)

// route is one HTTP route. The reference's order is kept: authentication
// (401), request validation (400: headers, params, query, body), scopes
// (403), the x-talo-alias player (404), then the handler, which loads
// the rest (the channel: 404).
type route struct {
	bucket   string
	public   bool     // no access key
	scopes   []string // checked after validation
	alias    bool     // x-talo-alias required and loaded
	validate func(c *apiCtx)
	handle   func(c *apiCtx)
}

// apiCtx is one request on its way through a route.
type apiCtx struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	key  store.AccessKey
	game store.Game
	ren  render

	aliasID    int64
	alias      store.Alias
	devBuild   bool
	includeDev bool

	body    map[string]json.RawMessage
	bodyRaw []byte
	badBody bool
	errs    map[string][]string
}

func (s *Server) handle(pattern string, rt route) {
	s.api.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		s.serveRoute(sw, r, rt)
		s.opts.Metrics.HTTPRequest("talo", pattern, sw.code)
	})
}

// statusWriter remembers the status code for the request metric.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt route) {
	c := &apiCtx{s: s, w: w, r: r, ctx: r.Context()}
	if rt.bucket != bucketNone && !s.allowHTTP(c, rt.bucket) {
		return
	}
	c.devBuild = headerFlag(r, "X-Talo-Dev-Build")
	c.includeDev = headerFlag(r, "X-Talo-Include-Dev-Data")
	if !rt.public {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			c.message(http.StatusUnauthorized, "Authentication Error")
			return
		}
		var err error
		if c.key, c.game, err = s.authenticate(c.ctx, strings.TrimSpace(tok)); err != nil {
			c.message(http.StatusUnauthorized, "Authentication Error")
			return
		}
		c.ren = render{st: s.st, game: c.game}
	}
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			c.message(http.StatusRequestEntityTooLarge, "Request body too large")
			return
		}
		c.bodyRaw = raw
		if len(strings.TrimSpace(string(raw))) > 0 {
			if json.Unmarshal(raw, &c.body) != nil || c.body == nil {
				c.badBody = true
			}
		}
	}
	if !rt.public && c.game.VerifyRequests && r.Method != http.MethodGet && r.Header.Get("X-Talo-Alias") != "" {
		if !s.verifyHTTP(c) {
			c.writeJSON(http.StatusUnauthorized, codedMessage{"Invalid signature", "INVALID_SIGNATURE"})
			return
		}
	}
	if rt.alias {
		h := strings.TrimSpace(r.Header.Get("X-Talo-Alias"))
		if h == "" {
			c.fail("x-talo-alias", "x-talo-alias is missing from the request headers")
		} else if id, err := strconv.ParseInt(h, 10, 64); err != nil || id < 1 {
			c.fail("x-talo-alias", "x-talo-alias header must be a numeric string")
		} else {
			c.aliasID = id
		}
	}
	if c.badBody {
		c.fail("body", "Invalid JSON body")
	}
	if rt.validate != nil && !c.badBody {
		rt.validate(c)
	}
	if len(c.errs) > 0 {
		errs := make(map[string][]string, len(c.errs))
		for k, v := range c.errs {
			errs[k] = v
		}
		c.writeJSON(http.StatusBadRequest, map[string]any{"errors": errs})
		return
	}
	if missing := missingScopes(c.key.Scopes, rt.scopes); !rt.public && len(missing) > 0 {
		c.message(http.StatusForbidden, "Missing access key scope(s): "+strings.Join(missing, ", "))
		return
	}
	if rt.alias {
		a, err := s.st.Alias(c.ctx, c.game.ID, c.aliasID)
		if errors.Is(err, store.ErrNotFound) {
			c.message(http.StatusNotFound, "Player not found")
			return
		}
		if c.internal(err) {
			return
		}
		c.alias = a
	}
	rt.handle(c)
}

func headerFlag(r *http.Request, name string) bool {
	n, _ := strconv.Atoi(strings.TrimSpace(r.Header.Get(name)))
	return n != 0
}

// clientIP is the peer's address (or the first X-Forwarded-For hop when
// trusted).
func (s *Server) clientIP(r *http.Request) string {
	if s.opts.TrustProxyHeaders {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			return strings.TrimSpace(strings.Split(f, ",")[0])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allowHTTP counts the request in its bucket (cluster-wide, KVIncr) and
// answers 429 with Retry-After when over the limit.
func (s *Server) allowHTTP(c *apiCtx, bucket string) bool {
	if s.opts.DisableRateLimits {
		return true
	}
	limit := s.opts.HTTPLimitDefault
	if bucket == bucketAuth {
		limit = s.opts.HTTPLimitAuth
	}
	n, err := s.kv.KVIncr(c.ctx, kvNamespace, "rl:"+bucket+":"+s.clientIP(c.r), s.opts.HTTPLimitWindow)
	if err != nil {
		s.log.Warn("rate-limit counter failed; letting the request through", "err", err)
		return true
	}
	if n > int64(limit) {
		s.pm.Error("http_rate_limited")
		c.w.Header().Set("Retry-After", strconv.Itoa(int(s.opts.HTTPLimitWindow.Seconds())))
		c.message(http.StatusTooManyRequests, "Too many requests")
		return false
	}
	return true
}

// fail records a validation error for a field.
func (c *apiCtx) fail(field, msg string) {
	if c.errs == nil {
		c.errs = map[string][]string{}
	}
	c.errs[field] = append(c.errs[field], msg)
}

func (c *apiCtx) writeJSON(code int, v any) {
	b, err := marshal(v)
	if err != nil {
		c.s.log.Error("response encoding failed", "err", err)
		code, b = http.StatusInternalServerError, []byte(`{"message":"Something went wrong, please try again later"}`)
	}
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(code)
	_, _ = c.w.Write(b)
}

func (c *apiCtx) message(code int, msg string) {
	c.writeJSON(code, map[string]string{"message": msg})
}

func (c *apiCtx) noContent() { c.w.WriteHeader(http.StatusNoContent) }

// internal answers 500 for an unexpected error and reports whether it did.
func (c *apiCtx) internal(err error) bool {
	if err == nil {
		return false
	}
	c.s.log.Error("request failed", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	c.message(http.StatusInternalServerError, "Something went wrong, please try again later")
	return true
}

// query returns a trimmed query parameter; required ones missing are a
// validation error.
func (c *apiCtx) query(name string, required bool) string {
	v := strings.TrimSpace(c.r.URL.Query().Get(name))
	if v == "" && required {
		c.fail(name, name+" is missing from the request query")
	}
	return v
}

// pathID parses a numeric path parameter.
func (c *apiCtx) pathID(name string) int64 {
	v := c.r.PathValue(name)
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		c.fail(name, coerceNumberError(v))
		return 0
	}
	return id
}

// page parses ?page= (0-based; default 0).
func (c *apiCtx) page() int {
	v := c.r.URL.Query().Get("page")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		c.fail("page", coerceNumberError(v))
		return 0
	case n < 0:
		c.fail("page", "Too small: expected number to be >=0")
		return 0
	}
	return n
}

// bodyString reads a string body field; present reports whether it was given.
func (c *apiCtx) bodyString(name string, required bool) (v string, present bool) {
	raw, ok := c.body[name]
	if !ok {
		if required {
			c.fail(name, name+" is missing from the request body")
		}
		return "", false
	}
	if s, ok := str(raw); ok {
		return s, true
	}
	c.fail(name, "Invalid input: expected string, received "+jsonType(raw))
	return "", false
}

// bodyBool reads an optional boolean body field.
func (c *apiCtx) bodyBool(name string) *bool {
	raw, ok := c.body[name]
	if !ok {
		return nil
	}
	var b bool
	if firstByte(raw) == 't' || firstByte(raw) == 'f' {
		if json.Unmarshal(raw, &b) == nil {
			return &b
		}
	}
	c.fail(name, "Invalid input: expected boolean, received "+jsonType(raw))
	return nil
}

// bodyInt reads an integer body field; null reports (0, true, true).
func (c *apiCtx) bodyInt(name string, required, nullable bool) (v int64, present, isNull bool) {
	raw, ok := c.body[name]
	if !ok {
		if required {
			c.fail(name, name+" is missing from the request body")
		}
		return 0, false, false
	}
	if nullable && firstByte(raw) == 'n' {
		return 0, true, true
	}
	if f, ok := num(raw); ok && f == float64(int64(f)) {
		return int64(f), true, false
	}
	c.fail(name, "Invalid input: expected number, received "+jsonType(raw))
	return 0, false, false
}

// verifyHTTP checks X-Talo-Signature over the raw body.
func (s *Server) verifyHTTP(c *apiCtx) bool {
	aliasID, _ := strconv.ParseInt(c.r.Header.Get("X-Talo-Alias"), 10, 64)
	return s.verifySignature(c.ctx, c.game.ID, aliasID, c.r.Header.Get("X-Talo-Signature"), c.bodyRaw) == nil
}

// codedMessage is an error body with a code, message first.
type codedMessage struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// coerceNumberError is zod's message for z.coerce.number().int() on a
// string that is not an integer.
func coerceNumberError(v string) string {
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && strings.TrimSpace(v) != "" {
		return "Invalid input: expected int, received number"
	}
	return "Invalid input: expected number, received NaN"
}

// jsonType names a JSON value's type as zod reports it.
func jsonType(raw json.RawMessage) string {
	switch firstByte(raw) {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '[':
		return "array"
	case '{':
		return "object"
	}
	return "number"
}
