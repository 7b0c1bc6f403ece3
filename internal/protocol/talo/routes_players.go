package talo

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

func (s *Server) routes() {
	s.handle("GET /public/health", route{public: true, handle: func(c *apiCtx) { c.noContent() }})
	s.handle("GET /v1/health-check", route{handle: func(c *apiCtx) { c.noContent() }})
	s.handle("POST /v1/socket-tickets", route{bucket: bucketAuth, handle: s.socketTicket})
	s.handle("GET /v1/players/identify", route{bucket: bucketAuth, scopes: []string{"read:players"}, validate: func(c *apiCtx) {
		c.query("service", true)
		c.query("identifier", true)
	}, handle: s.identify})
	s.handle("POST /v1/players/socket-token", route{bucket: bucketAuth, scopes: []string{"write:players"}, alias: true, handle: s.socketToken})
	s.handle("GET /v1/players/presence/{playerId}", route{bucket: bucketDefault, scopes: []string{"read:playerPresence"},
		validate: func(c *apiCtx) {
			if !uuidPattern.MatchString(c.r.PathValue("playerId")) {
				c.fail("playerId", "playerId must be a valid UUID")
			}
		}, handle: s.getPresence})
	s.handle("PUT /v1/players/presence", route{bucket: bucketDefault, scopes: []string{"write:playerPresence"}, alias: true,
		validate: func(c *apiCtx) {
			c.bodyBool("online")
			c.bodyString("customStatus", false)
		}, handle: s.putPresence})
	s.handle("GET /v1/game-config", route{bucket: bucketDefault, scopes: []string{"read:gameConfig"}, handle: s.gameConfig})
	s.channelRoutes()
	s.relationshipRoutes()
	s.api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		(&apiCtx{s: s, w: w, r: r}).message(http.StatusNotFound, "Not Found")
	})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// socketTicket stores "<keyId>:<0|1>" under a fresh UUID, single use,
// for TicketTTL. No scope is needed (as in the reference).
func (s *Server) socketTicket(c *apiCtx) {
	ticket := store.NewUUID()
	dev := "0"
	if c.devBuild {
		dev = "1"
	}
	if c.internal(s.kv.KVSet(c.ctx, kvNamespace, "ticket:"+ticket, []byte(strconv.FormatInt(c.key.ID, 10)+":"+dev), s.opts.TicketTTL)) {
		return
	}
	c.writeJSON(http.StatusOK, map[string]string{"ticket": ticket})
}

// issueSocketToken replaces an alias's socket token (one per alias).
func (s *Server) issueSocketToken(c *apiCtx, aliasID int64) (string, bool) {
	tok := store.NewUUID()
	err := s.kv.KVSet(c.ctx, kvNamespace, "socketToken:"+strconv.FormatInt(aliasID, 10), []byte(tok), s.opts.SocketTokenTTL)
	return tok, !c.internal(err)
}

func (s *Server) identify(c *apiCtx) {
	service, identifier := c.query("service", true), c.query("identifier", true)
	a, err := s.st.FindAlias(c.ctx, c.game.ID, service, identifier)
	switch {
	case errors.Is(err, store.ErrNotFound) && service == "talo":
		c.message(http.StatusNotFound, "Player not found: Talo aliases must be created using the /v1/players/auth API")
		return
	case errors.Is(err, store.ErrNotFound) && !hasScope(c.key.Scopes, "write:players"):
		c.message(http.StatusNotFound, "Player not found. Use an access key with the write:players scope to automatically create players")
		return
	case errors.Is(err, store.ErrNotFound):
		a, err = s.st.CreatePlayer(c.ctx, c.game.ID, service, identifier, c.devBuild)
		if errors.Is(err, store.ErrConflict) { // created meanwhile
			a, err = s.st.FindAlias(c.ctx, c.game.ID, service, identifier)
		}
		if c.internal(err) {
			return
		}
	case c.internal(err):
		return
	case a.Service == "talo":
		c.writeJSON(http.StatusUnauthorized, codedMessage{"The x-talo-session header is required for this player", "MISSING_SESSION"})
		return
	default:
		if c.internal(s.st.TouchAlias(c.ctx, &a)) {
			return
		}
	}
	j, err := c.ren.alias(c.ctx, a)
	if c.internal(err) {
		return
	}
	tok, ok := s.issueSocketToken(c, a.ID)
	if !ok {
		return
	}
	c.writeJSON(http.StatusOK, struct {
		Alias       aliasJSON `json:"alias"`
		SocketToken string    `json:"socketToken"`
	}{j, tok})
}

func (s *Server) socketToken(c *apiCtx) {
	if tok, ok := s.issueSocketToken(c, c.alias.ID); ok {
		c.writeJSON(http.StatusOK, map[string]string{"socketToken": tok})
	}
}

func (s *Server) getPresence(c *apiCtx) {
	p, err := s.st.Player(c.ctx, c.game.ID, strings.ToLower(c.r.PathValue("playerId")))
	if errors.Is(err, store.ErrNotFound) {
		c.message(http.StatusNotFound, "Player not found")
		return
	}
	if c.internal(err) {
		return
	}
	pr, ok, err := s.st.Presence(c.ctx, p.ID)
	if c.internal(err) {
		return
	}
	if !ok {
		pr = store.Presence{PlayerID: p.ID, UpdatedAt: s.now()}
	}
	j, err := c.ren.presence(c.ctx, pr)
	if c.internal(err) {
		return
	}
	c.writeJSON(http.StatusOK, map[string]any{"presence": j})
}

func (s *Server) putPresence(c *apiCtx) {
	online := c.bodyBool("online")
	var status *string
	if v, present := c.bodyString("customStatus", false); present {
		status = &v
	}
	if c.internal(s.setPresence(c.ctx, c.game, c.alias.ID, c.alias.Player.ID, online, status)) {
		return
	}
	pr, _, err := s.st.Presence(c.ctx, c.alias.Player.ID)
	if c.internal(err) {
		return
	}
	j, err := c.ren.presence(c.ctx, pr)
	if c.internal(err) {
		return
	}
	c.writeJSON(http.StatusOK, map[string]any{"presence": j})
}

// liveConfig is the game's props without the META_ ones.
func (s *Server) liveConfig(c *apiCtx) ([]propJSON, bool) {
	props, err := s.st.GameProps(c.ctx, c.game.ID)
	if c.internal(err) {
		return nil, false
	}
	out := []propJSON{}
	for _, p := range props {
		if !strings.HasPrefix(p.Key, "META_") {
			out = append(out, propJSON{p.Key, p.Value})
		}
	}
	return out, true
}

func (s *Server) gameConfig(c *apiCtx) {
	if cfg, ok := s.liveConfig(c); ok {
		c.writeJSON(http.StatusOK, map[string]any{"config": cfg})
	}
}
