package damon

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-rt/switchboard/internal/metrics"
	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
)

// reasonUnidentified is a drop of ours, not the wire package's: EVENT/REPLY
// from an unidentified connection with require_identify on.
const reasonUnidentified = wire.Reason(255)

func reasonLabel(r wire.Reason) string {
	if r == reasonUnidentified {
		return "unidentified"
	}
	return r.Label()
}

// counters are pre-resolved, so counting on the hot path is one atomic add.
type counters struct {
	dropped     [256]prometheus.Counter // by wire.Reason
	disconnects [discCount]prometheus.Counter
	forwarded   [2][4]prometheus.Counter // [0 EVENT, 1 REPLY][wire.Target]
	// identifyRejected: [rejectBadToken] checked and failed (answered
	// IDENTIFY_FAILED), [rejectThrottled] refused unchecked (throttle.go).
	identifyRejected [2]prometheus.Counter
}

const (
	rejectBadToken  = 0
	rejectThrottled = 1
)

func register[T prometheus.Collector](r *prometheus.Registry, c T) (T, error) {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

func newCounters(m *metrics.Metrics) (*counters, error) {
	dropped, err := register(m.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_damon_dropped_total",
		Help: "Damon documents dropped silently, as the reference drops them, by reason.",
	}, []string{"reason"}))
	if err != nil {
		return nil, err
	}
	disc, err := register(m.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_damon_disconnects_total",
		Help: "Damon connections closed by the server with a DISCONNECT reason.",
	}, []string{"reason"}))
	if err != nil {
		return nil, err
	}
	fwd, err := register(m.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_damon_forwarded_total",
		Help: "Damon EVENT and REPLY messages routed, by opcode and intent target.",
	}, []string{"op", "target"}))
	if err != nil {
		return nil, err
	}
	rej, err := register(m.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_damon_identify_rejected_total",
		Help: "Damon IDENTIFYs refused: reason bad_token (checked, answered IDENTIFY_FAILED) or throttled (the source address ran out of failure budget; closed unchecked).",
	}, []string{"reason"}))
	if err != nil {
		return nil, err
	}
	c := &counters{}
	c.identifyRejected[rejectBadToken] = rej.WithLabelValues("bad_token")
	c.identifyRejected[rejectThrottled] = rej.WithLabelValues("throttled")
	for _, r := range append(wire.Reasons(), reasonUnidentified) {
		if r == wire.ReasonTooBig {
			continue // a disconnect, counted there
		}
		c.dropped[r] = dropped.WithLabelValues(reasonLabel(r))
	}
	for d := range discCount {
		c.disconnects[d] = disc.WithLabelValues(disconnects[d].reason)
	}
	for i, op := range []string{"event", "reply"} {
		for _, t := range []wire.Target{wire.TargetGlobal, wire.TargetGroup, wire.TargetDirect} {
			c.forwarded[i][t] = fwd.WithLabelValues(op, map[wire.Target]string{
				wire.TargetGlobal: "global", wire.TargetGroup: "group", wire.TargetDirect: "direct"}[t])
		}
	}
	return c, nil
}

func (c *counters) drop(r wire.Reason) {
	if ctr := c.dropped[r]; ctr != nil { // nil: ReasonNone, ReasonTooBig
		ctr.Inc()
	}
}
