package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster counts what a cluster engine does, for an operator: broker
// traffic per publication, store load and latency-free error counts,
// reaps, fencing and the number of live nodes. The server adapts each
// engine's observer interface to it.
type Cluster struct {
	brokerMessages prometheus.Counter
	storeOps       *prometheus.CounterVec
	reaps          prometheus.Counter
	orphans        prometheus.Counter
	fenced         prometheus.Counter
	nodes          prometheus.Gauge
}

// Cluster registers and returns the cluster engine's metrics.
func (m *Metrics) Cluster(engine string) *Cluster {
	labels := prometheus.Labels{"engine": engine}
	c := &Cluster{
		brokerMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_broker_messages_total", ConstLabels: labels,
			Help: "Messages this node sent to the broker (NATS or Redis pub/sub) for publications and control."}),
		storeOps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_cluster_store_operations_total", ConstLabels: labels,
			Help: "Cluster-state operations by kind and result (ok, conflict: a compare-and-set retried, error)."}, []string{"op", "result"}),
		reaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_reaps_total", ConstLabels: labels,
			Help: "Departed nodes whose state this node removed."}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_orphaned_transitions_total", ConstLabels: labels,
			Help: "Transitions (vacated, member removed, user offline) this node emitted for departed nodes."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_cluster_fenced_total", ConstLabels: labels,
			Help: "Times this node found itself dropped by the cluster, closed its connections and rejoined."}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_cluster_nodes", ConstLabels: labels,
			Help: "Live nodes this node sees in the cluster."}),
	}
	m.Registry.MustRegister(c.brokerMessages, c.storeOps, c.reaps, c.orphans, c.fenced, c.nodes)
	return c
}

// BrokerMessages adds n messages sent to the broker.
func (c *Cluster) BrokerMessages(n int) { c.brokerMessages.Add(float64(n)) }

// StoreOp counts one store operation; result is ok, conflict or error.
func (c *Cluster) StoreOp(op, result string) { c.storeOps.WithLabelValues(op, result).Inc() }

// Reaped counts one reaped node and the transitions it left.
func (c *Cluster) Reaped(transitions int) {
	c.reaps.Inc()
	c.orphans.Add(float64(transitions))
}

// Fenced counts one fencing of this node.
func (c *Cluster) Fenced() { c.fenced.Inc() }

// Nodes sets the number of live nodes.
func (c *Cluster) Nodes(n int) { c.nodes.Set(float64(n)) }
