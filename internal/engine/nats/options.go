package natsengine

import (
	"log/slog"
	"os"
	"time"
)

// Options configure the NATS engine. The zero value of each field has a
// default (see withDefaults).
type Options struct {
	// NodeName is this server's stable name (server_name of the embedded
	// server; shown in node records). Keep it stable across restarts:
	// every new name is a new JetStream peer. Default: the hostname.
	NodeName string
	// Name keeps this cluster apart from others on the same NATS: it goes
	// into every subject, stream and bucket name (names.go). Letters,
	// digits, _ and -. Default "": the names used before it existed.
	Name string
	// Heartbeat is how often the node refreshes its record and scans for
	// dead nodes. Default 1 s.
	Heartbeat time.Duration
	// NodeTimeout is how long a node may stay silent before a healthy
	// node reaps it. Default 10 s: above Raft's worst-case leader
	// election (9 s), so a store stall alone does not look like death.
	NodeTimeout time.Duration

	// Embedded runs a NATS server in this process (routes on Listen to
	// Routes, JetStream in StoreDir); otherwise the engine connects to URLs.
	Embedded bool
	// Listen is the embedded server's cluster route address, host:port.
	// Empty: a single embedded server without routes.
	Listen string
	// Routes is every node's route address, the same list on every node;
	// a node drops its own entry (the one equal to Listen).
	Routes []string
	// StoreDir is the embedded JetStream directory (state is kept in
	// memory streams; the directory holds JetStream's own metadata).
	StoreDir string
	// URLs of an external NATS cluster (JetStream enabled, >= 2.11 for
	// per-message TTL).
	URLs []string
	// Replicas of the state and cache streams. Default: embedded,
	// min(3, number of routes); external, 1.
	Replicas int

	// Logger receives the engine's and the embedded server's logs.
	// Default: slog.Default().
	Logger *slog.Logger
	// Observer receives counts for metrics; nil means none.
	Observer Observer
}

// Observer is told what an operator needs to watch: broker traffic, store
// load, reaps and cluster size. Implementations must be fast and safe for
// concurrent use (e.g. Prometheus counters).
type Observer interface {
	// BrokerPublish counts one message sent to the broker.
	BrokerPublish()
	// StoreOp counts one JetStream state operation ("get", "update",
	// "create", "delete", "scan") and whether it failed; conflict is a
	// CAS write that lost a race and was retried.
	StoreOp(op string, conflict bool, err error)
	// Reaped counts a dead node removed by this node, with the number of
	// transitions it handed to the hub.
	Reaped(orphans int)
	// Nodes reports the number of live node records this node sees.
	Nodes(n int)
}

type noObserver struct{}

func (noObserver) BrokerPublish()              {}
func (noObserver) StoreOp(string, bool, error) {}
func (noObserver) Reaped(int)                  {}
func (noObserver) Nodes(int)                   {}

func (o Options) withDefaults() Options {
	if o.NodeName == "" {
		o.NodeName, _ = os.Hostname()
		if o.NodeName == "" {
			o.NodeName = "switchboard"
		}
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 10 * time.Second
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
		if o.Embedded {
			o.Replicas = min(3, max(1, len(peerRoutes(o.Listen, o.Routes))+1))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = noObserver{}
	}
	return o
}
