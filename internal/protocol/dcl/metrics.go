package dcl

import (
	"github.com/prometheus/client_golang/prometheus"
)

// roomMetrics are the reference service's metrics, under its names, so its
// dashboards keep working (spec section 13). Switchboard's own per-protocol
// metrics (switchboard_connections{protocol="dcl"}, bytes, slow consumers,
// switchboard_protocol_errors_total{protocol="dcl",reason}) come from
// metrics.Conn.
type roomMetrics struct {
	rooms            prometheus.Gauge   // dcl_ws_rooms_count
	connections      prometheus.Gauge   // dcl_ws_rooms_connections: joined sessions (distinct addresses)
	connectionsTotal prometheus.Counter // dcl_ws_rooms_connections_total: completed joins
	kicks            prometheus.Counter // dcl_ws_rooms_kicks_total: peer_kicked sent
	unknown          prometheus.Counter // dcl_ws_rooms_unknown_sent_messages_total
	sent             prometheus.Counter // dcl_ws_rooms_sent_messages_total: peer updates relayed
	inMessages       prometheus.Counter // dcl_ws_rooms_in_messages: frames from joined peers
	inBytes          prometheus.Counter
	outMessages      prometheus.Counter // dcl_ws_rooms_out_messages: packets queued to peers
	outBytes         prometheus.Counter
}

func newRoomMetrics(reg prometheus.Registerer, commitHash, ethNetwork string) *roomMetrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &roomMetrics{
		rooms:            g("dcl_ws_rooms_count", "Current amount of rooms"),
		connections:      g("dcl_ws_rooms_connections", "Current amount of connections"),
		connectionsTotal: c("dcl_ws_rooms_connections_total", "Total amount of connections"),
		kicks:            c("dcl_ws_rooms_kicks_total", "Total amount of kicked players"),
		unknown:          c("dcl_ws_rooms_unknown_sent_messages_total", "Total amount of unknown messages"),
		sent:             c("dcl_ws_rooms_sent_messages_total", "Amount of user sent messages"),
		inMessages:       c("dcl_ws_rooms_in_messages", "Number of incoming messages"),
		inBytes:          c("dcl_ws_rooms_in_bytes", "Number of bytes from incoming messages"),
		outMessages:      c("dcl_ws_rooms_out_messages", "Number of outgoing messages"),
		outBytes:         c("dcl_ws_rooms_out_bytes", "Number of bytes from outgoing messages"),
	}
	if reg != nil {
		build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ws_room_service_build_info", Help: "Build information of the ws-room service",
		}, []string{"commitHash", "ethNetwork"})
		build.WithLabelValues(commitHash, ethNetwork).Set(1)
		reg.MustRegister(m.rooms, m.connections, m.connectionsTotal, m.kicks, m.unknown, m.sent,
			m.inMessages, m.inBytes, m.outMessages, m.outBytes, build)
	}
	return m
}

// out counts n packets of size bytes queued to peers.
func (m *roomMetrics) out(n, size int) {
	if n > 0 {
		m.outMessages.Add(float64(n))
		m.outBytes.Add(float64(n * size))
	}
}
