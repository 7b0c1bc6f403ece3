package hub

import (
	"context"
	"time"
)

// A namespace's connection quota (Pusher's per-app max_connections) counts
// connections across the cluster, as soketi's and Pusher's do. The count
// is kept as the occupancy of a reserved channel, so that every engine
// already holds it cluster-wide, per node, and drops a dead node's share
// with the rest of its state when it is reaped (docs/cluster.md,
// "Failure"). The name holds a NUL byte, which no protocol's channel
// names allow, and the hub leaves it out of channel listings and of what
// reaping reports.
const connectionsChannel = "\x00connections"

// quotaReleaseTimeout bounds the store round trip that gives a quota
// place back; past it the place stays taken until the node's state is
// reaped or the store comes back (the engine retries nothing here).
const quotaReleaseTimeout = 5 * time.Second

// AdmitConnection takes one of namespace ns's max connection places
// across the cluster. It reports false, having taken nothing, when all
// are taken. The count goes up first and back down when that went past
// max, so connections arriving at once on several nodes never exceed max
// together (at worst one of them is refused while another's place is
// being given back). On an error nothing is known to be taken, and
// nothing is given back: a store that failed after counting keeps the
// place until the node's state is reaped, which errs on the side of the
// quota. A connection admitted gives its place back with
// ReleaseConnection when it ends.
func (h *Hub) AdmitConnection(ctx context.Context, ns string, max int) (bool, error) {
	n, err := h.eng.Occupancy(ctx, ns, connectionsChannel, 1)
	if err != nil {
		return false, err
	}
	if n <= max {
		return true, nil
	}
	return false, h.ReleaseConnection(ns)
}

// ReleaseConnection gives back a place that AdmitConnection took.
func (h *Hub) ReleaseConnection(ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), quotaReleaseTimeout)
	defer cancel()
	_, err := h.eng.Occupancy(ctx, ns, connectionsChannel, -1)
	return err
}
