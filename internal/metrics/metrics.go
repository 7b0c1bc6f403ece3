// Package metrics exposes Switchboard's Prometheus metrics. It owns one
// registry per server (no global registry, so tests can run servers side
// by side) and hands each protocol and app pre-resolved counters, so the
// hot path does an atomic add, never a label lookup.
package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the server's metric set.
type Metrics struct {
	Registry *prometheus.Registry

	connections      *prometheus.GaugeVec
	connectionsTotal *prometheus.CounterVec
	messagesIn       *prometheus.CounterVec
	bytesIn          *prometheus.CounterVec
	bytesOut         *prometheus.CounterVec
	slowConsumers    *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	subscriptions    *prometheus.GaugeVec
	protocolErrors   *prometheus.CounterVec
	httpRequests     *prometheus.CounterVec
	webhookSends     *prometheus.CounterVec
	webhookQueue     *prometheus.GaugeVec
	connRateLimited  *prometheus.CounterVec
	apiRateLimited   *prometheus.CounterVec

	mu   sync.Mutex
	conn map[[2]string]*Conn
}

// New registers every metric on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pa := []string{"protocol", "app"}
	m := &Metrics{
		Registry: r,
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_connections", Help: "Open client connections.",
		}, pa),
		connectionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_connections_total", Help: "Client connections accepted.",
		}, pa),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_messages_in_total", Help: "Complete messages received from clients.",
		}, pa),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_bytes_in_total", Help: "Message bytes received from clients.",
		}, pa),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_bytes_out_total", Help: "Bytes written to client sockets, framing included.",
		}, pa),
		slowConsumers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_slow_consumer_disconnects_total", Help: "Connections closed because their send queue overflowed.",
		}, pa),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_fanout_deliveries_total", Help: "Messages queued to subscribers by fan-out.",
		}, []string{"app"}),
		subscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_subscriptions", Help: "Channel subscriptions on this node.",
		}, pa),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_protocol_errors_total", Help: "Errors sent to clients or inputs dropped, by protocol-specific reason.",
		}, []string{"protocol", "app", "reason"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"app", "route", "code"}),
		webhookSends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_sends_total", Help: "Webhook POSTs by result (ok, retry, failed, dropped).",
		}, []string{"app", "result"}),
		webhookQueue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_webhook_queue_events", Help: "Webhook events waiting to be sent.",
		}, []string{"app"}),
		connRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_connections_rate_limited_total",
			Help: "New connections refused because their client address opened connections too fast (limits.connection_rate), by listener (websocket, damon_tcp).",
		}, []string{"listener"}),
		apiRateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_api_rate_limited_total",
			Help: "HTTP API requests answered 429 because their app was over limits.api_rate.",
		}, []string{"app"}),
		conn: map[[2]string]*Conn{},
	}
	r.MustRegister(m.connections, m.connectionsTotal, m.messagesIn, m.bytesIn, m.bytesOut, m.slowConsumers,
		m.deliveries, m.subscriptions, m.protocolErrors, m.httpRequests, m.webhookSends, m.webhookQueue,
		m.connRateLimited, m.apiRateLimited)
	return m
}

// ParkedConnections exposes how many idle connections wait in the poller
// without a goroutine (switchboard_parked_connections); read on scrape.
func (m *Metrics) ParkedConnections(count func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_parked_connections",
		Help: "Idle WebSocket connections parked in epoll, holding no reader goroutine.",
	}, func() float64 { return float64(count()) }))
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Conn is the pre-resolved set of counters for one (protocol, app); it
// implements transport.Observer.
type Conn struct {
	Open, Subscriptions                               prometheus.Gauge
	Accepted, MessagesIn, BytesIn, Written, SlowConns prometheus.Counter
	errors                                            *prometheus.CounterVec
	protocol, app                                     string
}

// ForConn returns the counters for connections of one protocol and app.
func (m *Metrics) ForConn(protocol, app string) *Conn {
	k := [2]string{protocol, app}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.conn[k]; c != nil {
		return c
	}
	c := &Conn{
		Open:          m.connections.WithLabelValues(protocol, app),
		Subscriptions: m.subscriptions.WithLabelValues(protocol, app),
		Accepted:      m.connectionsTotal.WithLabelValues(protocol, app),
		MessagesIn:    m.messagesIn.WithLabelValues(protocol, app),
		BytesIn:       m.bytesIn.WithLabelValues(protocol, app),
		Written:       m.bytesOut.WithLabelValues(protocol, app),
		SlowConns:     m.slowConsumers.WithLabelValues(protocol, app),
		errors:        m.protocolErrors,
		protocol:      protocol,
		app:           app,
	}
	m.conn[k] = c
	return c
}

// MessageIn implements transport.Observer.
func (c *Conn) MessageIn(n int) { c.MessagesIn.Inc(); c.BytesIn.Add(float64(n)) }

// BytesOut implements transport.Observer.
func (c *Conn) BytesOut(n int) { c.Written.Add(float64(n)) }

// SlowConsumer implements transport.Observer.
func (c *Conn) SlowConsumer() { c.SlowConns.Inc() }

// Error counts an error sent or input dropped, by a short stable reason.
func (c *Conn) Error(reason string) { c.errors.WithLabelValues(c.protocol, c.app, reason).Inc() }

// Delivered implements hub.Observer.
func (m *Metrics) Delivered(app string, n int) { m.deliveries.WithLabelValues(app).Add(float64(n)) }

// HTTPRequest counts one HTTP API response.
func (m *Metrics) HTTPRequest(app, route string, code int) {
	m.httpRequests.WithLabelValues(app, route, strconv.Itoa(code)).Inc()
}

// ConnectionRateLimited counts one connection refused by the per-address
// connection rate limit on listener ("websocket" or "damon_tcp").
func (m *Metrics) ConnectionRateLimited(listener string) {
	m.connRateLimited.WithLabelValues(listener).Inc()
}

// APIRateLimited counts one HTTP API request refused by its app's rate limit.
func (m *Metrics) APIRateLimited(app string) {
	m.apiRateLimited.WithLabelValues(app).Inc()
}

// WebhookResult counts one webhook delivery attempt's outcome.
func (m *Metrics) WebhookResult(app, result string) {
	m.webhookSends.WithLabelValues(app, result).Inc()
}

// WebhookQueue sets the number of queued webhook events for an app.
func (m *Metrics) WebhookQueue(app string, n int) {
	m.webhookQueue.WithLabelValues(app).Set(float64(n))
}

// Value is the current value of the counter or gauge series called name
// whose labels include the given name/value pairs (labels alternate name,
// value); 0 when there is none. Tests use it to assert what was counted.
func (m *Metrics) Value(name string, labels ...string) float64 {
	families, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range s.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
						break
					}
				}
				if !found {
					continue series
				}
			}
			if c := s.GetCounter(); c != nil {
				return c.GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}
