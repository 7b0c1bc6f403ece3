package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Cluster chooses the engine that shares state and messages between nodes.
// See docs/cluster.md.
type Cluster struct {
	// Engine: memory (one node, the default), nats or redis.
	Engine string `yaml:"engine"`
	// NodeName is unique and stable per node (the embedded NATS server's
	// name: a new name is a new JetStream peer). Default: the hostname.
	NodeName string `yaml:"node_name"`
	// Heartbeat is how often a node proves it is alive; default 1s.
	Heartbeat Duration `yaml:"heartbeat"`
	// NodeTimeout: a node silent this long is reaped by a healthy one
	// (its members removed, its channels vacated); default 10s, above
	// JetStream's worst leader-election stall.
	NodeTimeout Duration `yaml:"node_timeout"`
	// Name keeps this cluster apart from others on the same Redis or NATS
	// (staging and production, say): it goes into every Redis key and
	// pub/sub channel, and every NATS subject, stream and bucket name.
	// Letters, digits, _ and -, up to 32. Default "": the names used
	// before it existed, so a running cluster keeps its state.
	Name  string       `yaml:"name"`
	NATS  ClusterNATS  `yaml:"nats"`
	Redis ClusterRedis `yaml:"redis"`
}

// ClusterNATS configures the NATS engine.
type ClusterNATS struct {
	// Embedded runs a NATS server inside this process (default true);
	// false connects to URLs.
	Embedded *bool `yaml:"embedded"`
	// Listen is the embedded server's cluster-route address; default
	// 0.0.0.0:6222.
	Listen string `yaml:"listen"`
	// Routes are the cluster's route URLs (nats-route://host:6222), the
	// same list on every node; a node drops its own.
	Routes []string `yaml:"routes"`
	// StoreDir holds the embedded JetStream's files; default
	// ./switchboard-nats.
	StoreDir string `yaml:"store_dir"`
	// URLs of an external NATS cluster (with JetStream, NATS 2.11+).
	URLs []string `yaml:"urls"`
	// Replicas of the state and cache streams; 0: embedded, min(3, the
	// number of routes); external, 1 (set 3 for a 3-server NATS cluster).
	Replicas int `yaml:"replicas"`
}

// ClusterRedis configures the Redis engine.
type ClusterRedis struct {
	// URL of the Redis server; default redis://127.0.0.1:6379.
	URL string `yaml:"url"`
}

func (c *Cluster) applyDefaults() {
	if c.Engine == "" {
		c.Engine = "memory"
	}
	if c.NodeName == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.NodeName = h
		} else {
			c.NodeName = "switchboard"
		}
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = Duration(time.Second)
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = Duration(10 * time.Second)
	}
	n := &c.NATS
	if n.Embedded == nil {
		n.Embedded = boolPtr(true)
	}
	if n.Listen == "" {
		n.Listen = "0.0.0.0:6222"
	}
	if n.StoreDir == "" {
		n.StoreDir = "./switchboard-nats"
	}
	if c.Redis.URL == "" {
		c.Redis.URL = "redis://127.0.0.1:6379"
	}
}

func (c *Cluster) validate() []string {
	var errs []string
	switch c.Engine {
	case "memory", "nats", "redis":
	default:
		errs = append(errs, fmt.Sprintf("cluster.engine %q: want memory, nats or redis", c.Engine))
	}
	if c.Heartbeat < 0 || c.NodeTimeout < 0 {
		errs = append(errs, "cluster: heartbeat and node_timeout must not be negative")
	} else if c.NodeTimeout.D() < 3*c.Heartbeat.D() {
		errs = append(errs, fmt.Sprintf("cluster.node_timeout %v: at least 3 heartbeats (%v) so one lost heartbeat does not reap a live node", c.NodeTimeout.D(), 3*c.Heartbeat.D()))
	}
	if !validClusterName(c.Name) {
		errs = append(errs, fmt.Sprintf("cluster.name %q: letters, digits, _ and -, up to 32", c.Name))
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		errs = append(errs, fmt.Sprintf("cluster.nats.replicas %d: out of range: allowed 0 (automatic) to 5", c.NATS.Replicas))
	}
	if c.Engine == "nats" {
		if On(c.NATS.Embedded, true) {
			if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
				errs = append(errs, fmt.Sprintf("cluster.nats.listen %q: want host:port", c.NATS.Listen))
			}
			for _, r := range c.NATS.Routes {
				if u, err := url.Parse(r); err != nil || u.Host == "" {
					errs = append(errs, fmt.Sprintf("cluster.nats.routes %q: want nats-route://host:port", r))
				}
			}
		} else if len(c.NATS.URLs) == 0 {
			errs = append(errs, "cluster.nats.urls: an external NATS (embedded: false) needs at least one URL")
		}
	}
	if c.Engine == "redis" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			errs = append(errs, fmt.Sprintf("cluster.redis.url %q: want redis://host:port, rediss:// or unix://", c.Redis.URL))
		}
	}
	return errs
}

// validClusterName: the characters that are safe in a Redis key, a NATS
// subject token and a JetStream stream name alike.
func validClusterName(n string) bool {
	if len(n) > 32 {
		return false
	}
	for _, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}
