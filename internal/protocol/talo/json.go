package talo

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

// The JSON shapes below copy the reference's toJSON output field by field
// and in the same key order (spec section 6): Unity's log helper and
// strict-equality tests depend on the order, Godot on every key's presence.

// isoTime formats like a JS Date in JSON: UTC with milliseconds.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type propJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type groupJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type playerJSON struct {
	ID         string        `json:"id"`
	Props      []propJSON    `json:"props"`
	DevBuild   bool          `json:"devBuild"`
	CreatedAt  string        `json:"createdAt"`
	LastSeenAt string        `json:"lastSeenAt"`
	Groups     []groupJSON   `json:"groups"`
	Presence   *presenceLite `json:"presence"`
}

// presenceLite is a presence nested in its player (no playerAlias).
type presenceLite struct {
	Online       bool   `json:"online"`
	CustomStatus string `json:"customStatus"`
	UpdatedAt    string `json:"updatedAt"`
}

type aliasJSON struct {
	ID          int64      `json:"id"`
	Service     string     `json:"service"`
	Identifier  string     `json:"identifier"`
	DisplayName string     `json:"displayName"`
	Player      playerJSON `json:"player"`
	LastSeenAt  string     `json:"lastSeenAt"`
	CreatedAt   string     `json:"createdAt"`
	UpdatedAt   string     `json:"updatedAt"`
}

type presenceJSON struct {
	PlayerAlias  *aliasJSON `json:"playerAlias"`
	Online       bool       `json:"online"`
	CustomStatus string     `json:"customStatus"`
	UpdatedAt    string     `json:"updatedAt"`
}

type channelJSON struct {
	ID                  int64      `json:"id"`
	Name                string     `json:"name"`
	Owner               *aliasJSON `json:"owner"`
	TotalMessages       int64      `json:"totalMessages"`
	Props               []propJSON `json:"props"`
	AutoCleanup         bool       `json:"autoCleanup"`
	Private             bool       `json:"private"`
	TemporaryMembership bool       `json:"temporaryMembership"`
	CreatedAt           string     `json:"createdAt"`
	UpdatedAt           string     `json:"updatedAt"`
	// MemberCount only in HTTP responses (never in socket messages).
	MemberCount *int `json:"memberCount,omitempty"`
}

type storagePropJSON struct {
	Key           string     `json:"key"`
	Value         string     `json:"value"`
	CreatedBy     *aliasJSON `json:"createdBy"`
	LastUpdatedBy *aliasJSON `json:"lastUpdatedBy"`
	CreatedAt     string     `json:"createdAt"`
	UpdatedAt     string     `json:"updatedAt"`
}

type subscriptionJSON struct {
	ID               int64     `json:"id"`
	Subscriber       aliasJSON `json:"subscriber"`
	SubscribedTo     aliasJSON `json:"subscribedTo"`
	Confirmed        bool      `json:"confirmed"`
	RelationshipType string    `json:"relationshipType"`
	CreatedAt        string    `json:"createdAt"`
	UpdatedAt        string    `json:"updatedAt"`
}

type rejectedPropJSON struct {
	Key     string `json:"key"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func propsJSON(ps []store.Prop) []propJSON {
	out := make([]propJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, propJSON{p.Key, p.Value})
	}
	return out
}

// render turns store rows into wire JSON; it needs the game for the
// display-name prop and the store for nested rows.
type render struct {
	st   *store.Store
	game store.Game
}

func (r render) alias(ctx context.Context, a store.Alias) (aliasJSON, error) {
	display := a.Identifier
	if k := r.game.DisplayNamePropKey; k != "" {
		for _, p := range a.Player.Props {
			if p.Key == k && p.Value != "" {
				display = p.Value
			}
		}
	}
	pl, err := r.player(ctx, a.Player)
	return aliasJSON{
		ID: a.ID, Service: a.Service, Identifier: a.Identifier, DisplayName: display, Player: pl,
		LastSeenAt: isoTime(a.LastSeenAt), CreatedAt: isoTime(a.CreatedAt), UpdatedAt: isoTime(a.UpdatedAt),
	}, err
}

func (r render) player(ctx context.Context, p store.Player) (playerJSON, error) {
	groups := make([]groupJSON, 0, len(p.Groups))
	for _, g := range p.Groups {
		groups = append(groups, groupJSON(g))
	}
	out := playerJSON{ID: p.ID, Props: propsJSON(p.Props), DevBuild: p.DevBuild, CreatedAt: isoTime(p.CreatedAt),
		LastSeenAt: isoTime(p.LastSeenAt), Groups: groups}
	pr, ok, err := r.st.Presence(ctx, p.ID)
	if ok {
		out.Presence = &presenceLite{Online: pr.Online, CustomStatus: pr.CustomStatus, UpdatedAt: isoTime(pr.UpdatedAt)}
	}
	return out, err
}

func (r render) aliasByID(ctx context.Context, id int64) (*aliasJSON, error) {
	if id == 0 {
		return nil, nil
	}
	a, err := r.st.Alias(ctx, r.game.ID, id)
	if err == store.ErrNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j, err := r.alias(ctx, a)
	return &j, err
}

func (r render) presence(ctx context.Context, p store.Presence) (presenceJSON, error) {
	a, err := r.aliasByID(ctx, p.AliasID)
	return presenceJSON{PlayerAlias: a, Online: p.Online, CustomStatus: p.CustomStatus, UpdatedAt: isoTime(p.UpdatedAt)}, err
}

// channel renders a channel; withCount adds memberCount (HTTP only).
func (r render) channel(ctx context.Context, c store.Channel, withCount, includeDev bool) (channelJSON, error) {
	owner, err := r.aliasByID(ctx, c.OwnerAliasID)
	if err != nil {
		return channelJSON{}, err
	}
	out := channelJSON{ID: c.ID, Name: c.Name, Owner: owner, TotalMessages: c.TotalMessages, Props: propsJSON(c.Props),
		AutoCleanup: c.AutoCleanup, Private: c.Private, TemporaryMembership: c.TemporaryMembership,
		CreatedAt: isoTime(c.CreatedAt), UpdatedAt: isoTime(c.UpdatedAt)}
	if withCount {
		n, err := r.st.MemberCount(ctx, c.ID, includeDev)
		if err != nil {
			return out, err
		}
		out.MemberCount = &n
	}
	return out, nil
}

func (r render) storageProp(ctx context.Context, p store.StorageProp) (storagePropJSON, error) {
	cb, err := r.aliasByID(ctx, p.CreatedByAliasID)
	if err != nil {
		return storagePropJSON{}, err
	}
	lb, err := r.aliasByID(ctx, p.LastUpdatedByAliasID)
	return storagePropJSON{Key: p.Key, Value: p.Value, CreatedBy: cb, LastUpdatedBy: lb,
		CreatedAt: isoTime(p.CreatedAt), UpdatedAt: isoTime(p.UpdatedAt)}, err
}

func (r render) storageProps(ctx context.Context, ps []store.StorageProp) ([]storagePropJSON, error) {
	out := make([]storagePropJSON, 0, len(ps))
	for _, p := range ps {
		j, err := r.storageProp(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

func (r render) subscription(ctx context.Context, s store.Subscription) (subscriptionJSON, error) {
	sub, err := r.aliasByID(ctx, s.SubscriberID)
	if err != nil || sub == nil {
		return subscriptionJSON{}, err
	}
	to, err := r.aliasByID(ctx, s.SubscribedToID)
	if err != nil || to == nil {
		return subscriptionJSON{}, err
	}
	return subscriptionJSON{ID: s.ID, Subscriber: *sub, SubscribedTo: *to, Confirmed: s.Confirmed, RelationshipType: s.RelationshipType,
		CreatedAt: isoTime(s.CreatedAt), UpdatedAt: isoTime(s.UpdatedAt)}, nil
}

// envelope is a socket response: res first, then data.
type envelope struct {
	Res  string `json:"res"`
	Data any    `json:"data"`
}

// encodeRes serialises one socket response (once per fan-out).
func encodeRes(res string, data any) []byte {
	b, err := marshal(envelope{Res: res, Data: data})
	if err != nil {
		panic("talo: unencodable response " + res + ": " + err.Error())
	}
	return b
}

// marshal is json.Marshal without HTML escaping, as JSON.stringify writes
// <, > and & as they are.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
