package redisengine

import (
	"log/slog"
	"os"
	"time"
)

// Options configure the engine. The zero value of every field has a default.
type Options struct {
	// URL of the Redis server, as rueidis.ParseURL reads it:
	// redis://[user:pass@]host:port[/db], rediss:// for TLS, or Sentinels
	// with redis://sentinel:26379?addr=sentinel2:26379&master_set=name.
	// Default redis://127.0.0.1:6379. Redis Cluster is refused at Start:
	// the scripts touch a channel's keys and the node's index together,
	// which spans slots.
	URL string
	// NodeName is the stable part of the node id (default: the host name);
	// every start, and every rejoin after fencing, appends a random suffix.
	NodeName string
	// Heartbeat is how often the node refreshes its record, probes its
	// pub/sub connection and looks for dead nodes (default 1s).
	Heartbeat time.Duration
	// NodeTimeout is how long a node may be silent before another node
	// reaps it (default 10s).
	NodeTimeout time.Duration
	// Prefix starts every key and pub/sub channel (default "sb:").
	Prefix string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Metrics receives counts for an operator; nil records nothing.
	Metrics Metrics
}

// Metrics is what the engine reports; the server adapts it to Prometheus.
// Calls come from many goroutines and must not block.
type Metrics interface {
	// Published: one PUBLISH reached receivers subscribed connections
	// (nodes); the broker messages a publication cost.
	Published(receivers int64)
	// StoreOp: one state operation (a script, or a query) ran; err is nil
	// on success.
	StoreOp(op string, err error)
	// Reaped: this node removed a departed node's state, which produced
	// transitions orphaned transitions.
	Reaped(node string, transitions int)
	// Nodes: the number of live node records after a heartbeat.
	Nodes(n int)
	// Fenced: this node found its record gone and rejoined.
	Fenced()
}

type noMetrics struct{}

func (noMetrics) Published(int64)       {}
func (noMetrics) StoreOp(string, error) {}
func (noMetrics) Reaped(string, int)    {}
func (noMetrics) Nodes(int)             {}
func (noMetrics) Fenced()               {}

func (o Options) withDefaults() Options {
	if o.URL == "" {
		o.URL = "redis://127.0.0.1:6379"
	}
	if o.NodeName == "" {
		o.NodeName, _ = os.Hostname()
		if o.NodeName == "" {
			o.NodeName = "node"
		}
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 10 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "sb:"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	return o
}

// probeTimeout bounds a liveness PING and a heartbeat: long enough for a
// loaded server, short enough that a wedged connection is replaced well
// before other nodes would reap this one.
func (o Options) probeTimeout() time.Duration {
	return max(2*o.Heartbeat, min(time.Second, o.NodeTimeout/2))
}
