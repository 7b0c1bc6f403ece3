package server

import (
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/engine"
	"github.com/switchboard-rt/switchboard/internal/engine/memory"
	natsengine "github.com/switchboard-rt/switchboard/internal/engine/nats"
	redisengine "github.com/switchboard-rt/switchboard/internal/engine/redis"
	"github.com/switchboard-rt/switchboard/internal/metrics"
)

// newEngine builds the engine cluster.engine names. See docs/cluster.md.
func (s *Server) newEngine() (engine.Engine, error) {
	c := s.cfg.Cluster
	log := s.log.With("engine", c.Engine)
	switch c.Engine {
	case "memory", "":
		return memory.New(), nil
	case "redis":
		return redisengine.New(redisengine.Options{
			URL:         c.Redis.URL,
			Prefix:      redisPrefix(c.Name),
			NodeName:    c.NodeName,
			Heartbeat:   c.Heartbeat.D(),
			NodeTimeout: c.NodeTimeout.D(),
			Logger:      log,
			Metrics:     redisObserver{s.metrics.Cluster("redis")},
		}), nil
	case "nats":
		return natsengine.New(natsengine.Options{
			Name:        c.Name,
			NodeName:    c.NodeName,
			Heartbeat:   c.Heartbeat.D(),
			NodeTimeout: c.NodeTimeout.D(),
			Embedded:    config.On(c.NATS.Embedded, true),
			Listen:      c.NATS.Listen,
			Routes:      c.NATS.Routes,
			StoreDir:    c.NATS.StoreDir,
			URLs:        c.NATS.URLs,
			Replicas:    c.NATS.Replicas,
			Logger:      log,
			Observer:    natsObserver{s.metrics.Cluster("nats")},
		})
	}
	return nil, fmt.Errorf("cluster.engine %q is not built into this binary", c.Engine)
}

// redisPrefix starts every Redis key and pub/sub channel of the cluster
// named name. A named cluster's prefix differs before its first colon, so
// no key pattern of the unnamed one ("sb:...") can match its keys.
func redisPrefix(name string) string {
	if name == "" {
		return "sb:"
	}
	return "sb-" + name + ":"
}

// clusterKV is the engine's KV when several nodes share it (nil for the
// memory engine, where one process pairs held webhooks by itself).
func (s *Server) clusterKV() engine.KV {
	if s.cfg.Cluster.Engine == "memory" || s.cfg.Cluster.Engine == "" {
		return nil
	}
	kv, _ := s.eng.(engine.KV)
	return kv
}

// redisObserver adapts the Redis engine's metrics to Prometheus.
type redisObserver struct{ c *metrics.Cluster }

func (o redisObserver) Published(receivers int64) { o.c.BrokerMessages(1) }
func (o redisObserver) StoreOp(op string, err error) {
	o.c.StoreOp(op, result(false, err))
}
func (o redisObserver) Reaped(_ string, transitions int) { o.c.Reaped(transitions) }
func (o redisObserver) Nodes(n int)                      { o.c.Nodes(n) }
func (o redisObserver) Fenced()                          { o.c.Fenced() }

// natsObserver adapts the NATS engine's metrics to Prometheus.
type natsObserver struct{ c *metrics.Cluster }

func (o natsObserver) BrokerPublish() { o.c.BrokerMessages(1) }
func (o natsObserver) StoreOp(op string, conflict bool, err error) {
	o.c.StoreOp(op, result(conflict, err))
}
func (o natsObserver) Reaped(orphans int) { o.c.Reaped(orphans) }
func (o natsObserver) Nodes(n int)        { o.c.Nodes(n) }

func result(conflict bool, err error) string {
	switch {
	case err != nil:
		return "error"
	case conflict:
		return "conflict"
	}
	return "ok"
}
