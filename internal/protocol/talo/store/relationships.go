package store

import (
	"context"
	"strings"
	"time"
)

// Subscription is one alias subscribed to another.
type Subscription struct {
	ID               int64
	SubscriberID     int64
	SubscribedToID   int64
	Confirmed        bool
	RelationshipType string // "unidirectional" or "bidirectional"
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

const subscriptionColumns = `id, subscriber_id, subscribed_to_id, confirmed, relationship_type, created_at, updated_at`

func scanSubscription(row interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var c, u int64
	err := row.Scan(&s.ID, &s.SubscriberID, &s.SubscribedToID, &s.Confirmed, &s.RelationshipType, &c, &u)
	s.CreatedAt, s.UpdatedAt = time.UnixMilli(c), time.UnixMilli(u)
	return s, err
}

// CreateSubscription subscribes one alias to another (unconfirmed).
// ErrConflict when it exists.
func (s *Store) CreateSubscription(ctx context.Context, subscriber, to int64, relType string, confirmed bool) (Subscription, error) {
	now := s.ms()
	sub := Subscription{SubscriberID: subscriber, SubscribedToID: to, RelationshipType: relType, Confirmed: confirmed,
		CreatedAt: time.UnixMilli(now), UpdatedAt: time.UnixMilli(now)}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO player_alias_subscriptions (subscriber_id, subscribed_to_id, confirmed, relationship_type, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), subscriber, to, confirmed, relType, now, now).Scan(&sub.ID)
	if err != nil && isUniqueViolation(err) {
		return sub, ErrConflict
	}
	return sub, err
}

// Subscription loads one subscription.
func (s *Store) Subscription(ctx context.Context, id int64) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM player_alias_subscriptions WHERE id = ?`), id))
	return sub, notFound(err)
}

// FindSubscription loads the subscription of subscriber to to.
func (s *Store) FindSubscription(ctx context.Context, subscriber, to int64) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRowContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM player_alias_subscriptions
		WHERE subscriber_id = ? AND subscribed_to_id = ?`), subscriber, to))
	return sub, notFound(err)
}

// ConfirmSubscription marks a subscription confirmed.
func (s *Store) ConfirmSubscription(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE player_alias_subscriptions SET confirmed = TRUE, updated_at = ? WHERE id = ?`), s.ms(), id)
	return err
}

// DeleteSubscription removes a subscription.
func (s *Store) DeleteSubscription(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM player_alias_subscriptions WHERE id = ?`), id)
	return err
}

// SubscriptionFilter narrows ListSubscriptions: exactly one of
// SubscriberID (subscriptions) or SubscribedToID (subscribers) is set.
type SubscriptionFilter struct {
	SubscriberID, SubscribedToID int64
	Confirmed                    *bool
	OtherAliasID                 int64
	RelationshipType             string
	Offset, Limit                int
}

// ListSubscriptions lists subscriptions matching f, newest first, with the total.
func (s *Store) ListSubscriptions(ctx context.Context, f SubscriptionFilter) ([]Subscription, int, error) {
	var where []string
	var args []any
	other := "subscriber_id"
	if f.SubscriberID != 0 {
		where, args, other = append(where, "subscriber_id = ?"), append(args, f.SubscriberID), "subscribed_to_id"
	}
	if f.SubscribedToID != 0 {
		where, args = append(where, "subscribed_to_id = ?"), append(args, f.SubscribedToID)
	}
	if f.Confirmed != nil {
		where, args = append(where, "confirmed = ?"), append(args, *f.Confirmed)
	}
	if f.OtherAliasID != 0 {
		where, args = append(where, other+" = ?"), append(args, f.OtherAliasID)
	}
	if f.RelationshipType != "" {
		where, args = append(where, "relationship_type = ?"), append(args, f.RelationshipType)
	}
	cond := " WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM player_alias_subscriptions`+cond), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	q := `SELECT ` + subscriptionColumns + ` FROM player_alias_subscriptions` + cond + ` ORDER BY created_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, f.Offset)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = rows.Close() }() // a read-only query: rows.Err reports its failures
	out := []Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sub)
	}
	return out, total, rows.Err()
}

// ConfirmedSubscriberIDs lists the aliases with a confirmed subscription to aliasID.
func (s *Store) ConfirmedSubscriberIDs(ctx context.Context, aliasID int64) ([]int64, error) {
	return s.ids(ctx, s.db, `SELECT subscriber_id FROM player_alias_subscriptions WHERE subscribed_to_id = ? AND confirmed = TRUE ORDER BY id`, aliasID)
}
