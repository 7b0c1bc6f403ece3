package natsengine

import "github.com/prometheus/client_golang/prometheus"

// PrometheusObserver is an Observer that keeps Prometheus metrics:
//
//	switchboard_cluster_broker_messages_total            messages sent to NATS
//	switchboard_cluster_store_ops_total{op,result}       state ops (ok, conflict, error)
//	switchboard_cluster_reaps_total                      dead nodes this node reaped
//	switchboard_cluster_orphans_total                    transitions those reaps handed out
//	switchboard_cluster_nodes                            live node records seen
type PrometheusObserver struct {
	broker  prometheus.Counter
	ops     *prometheus.CounterVec
	reaps   prometheus.Counter
	orphans prometheus.Counter
	nodes   prometheus.Gauge
}

// NewPrometheusObserver registers the engine's metrics with reg.
func NewPrometheusObserver(reg prometheus.Registerer) (*PrometheusObserver, error) {
	o := &PrometheusObserver{
		broker: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_broker_messages_total", Help: "Messages this node sent to the NATS broker."}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_cluster_store_ops_total",
			Help: "JetStream state operations by kind and result (ok, conflict: a CAS write lost a race and was retried, error)."}, []string{"op", "result"}),
		reaps:   prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_reaps_total", Help: "Silent nodes this node reaped."}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_orphans_total", Help: "Transitions left by reaped nodes and handed to this node."}),
		nodes:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_nodes", Help: "Live node records this node sees."}),
	}
	for _, c := range []prometheus.Collector{o.broker, o.ops, o.reaps, o.orphans, o.nodes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// BrokerPublish implements Observer.
func (o *PrometheusObserver) BrokerPublish() { o.broker.Inc() }

// StoreOp implements Observer.
func (o *PrometheusObserver) StoreOp(op string, conflict bool, err error) {
	result := "ok"
	switch {
	case err != nil:
		result = "error"
	case conflict:
		result = "conflict"
	}
	o.ops.WithLabelValues(op, result).Inc()
}

// Reaped implements Observer.
func (o *PrometheusObserver) Reaped(orphans int) {
	o.reaps.Inc()
	o.orphans.Add(float64(orphans))
}

// Nodes implements Observer.
func (o *PrometheusObserver) Nodes(n int) { o.nodes.Set(float64(n)) }
