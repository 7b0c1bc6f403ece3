package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/switchboard-rt/switchboard/internal/loadgen"
)

// clusterUsage lists the multi-node scenarios (see usage).
const clusterUsage = `
multi-node scenarios (bench/cluster.sh):
  cluster        subscribers spread over several nodes (--nodes), HTTP publishes round-robin or to one node;
                 cross-node latency, and with --metrics Switchboard's store ops/subscribe and broker messages/publish
  cluster-damon  Damon clients connecting to several nodes: store operations per connect and disconnect
  cluster-kill   SIGKILL a node holding a presence member; time until watchers on the others get member_removed
`

func isClusterScenario(s string) bool {
	return s == "cluster" || s == "cluster-damon" || s == "cluster-kill"
}

// runCluster parses the flags of a multi-node scenario and runs it.
func runCluster(ctx context.Context, scenario string, args []string) error {
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	var cf commonFlags
	nodes := fs.String("nodes", "127.0.0.1:6001,127.0.0.1:6002,127.0.0.1:6003",
		"nodes, comma-separated: host:port or ws://host:port or http://host:port (credentials from --key etc.)")
	baseline := fs.Duration("baseline", 2*time.Second, "idle window measuring background store operations (heartbeats), subtracted from the phases")
	var run func(c loadgen.Common, nodes []loadgen.Target, env loadgen.Env) (*loadgen.ClusterReport, error)
	switch scenario {
	case "cluster":
		cf.register(fs, 900)
		channels := fs.Int("channels", 100, "channels the subscribers are spread over")
		rates := fs.String("rates", "1000,5000", "publishes per second, one step each (a ramp stops at the first failing step)")
		step := fs.Duration("step", 20*time.Second, "duration of each rate step")
		workers := fs.Int("publish-workers", 32, "concurrent HTTP publishers")
		mode := fs.String("publish", "round-robin", "which node each publish goes to: round-robin or one")
		pubNode := fs.Int("publish-node", 0, "with --publish one: the node's index in --nodes")
		maxP99 := fs.Duration("max-p99", 100*time.Millisecond, "a step fails when p99 latency exceeds this")
		maxMissing := fs.Float64("max-missing", 0, "a step fails when more than this fraction of deliveries is missing")
		keepGoing := fs.Bool("keep-going", false, "run every rate even after a failed step")
		pause := fs.Duration("pause", 2*time.Second, "pause between steps")
		metrics := fs.Bool("metrics", false, "scrape each node's /metrics for switchboard_cluster_* counters (Switchboard only)")
		run = func(c loadgen.Common, nodes []loadgen.Target, env loadgen.Env) (*loadgen.ClusterReport, error) {
			r, err := parseRates(*rates)
			if err != nil {
				return nil, err
			}
			m, err := loadgen.ParsePublishMode(*mode)
			if err != nil {
				return nil, err
			}
			return loadgen.RunCluster(ctx, loadgen.ClusterConfig{Common: c, Nodes: nodes, Channels: *channels, Rates: r,
				StepDuration: *step, PublishWorkers: *workers, PublishMode: m, PublishNode: *pubNode,
				KeepGoing: *keepGoing, Pause: *pause, Metrics: *metrics, Baseline: *baseline,
				Limits: loadgen.StepLimits{MaxP99: *maxP99, MaxMissingRatio: *maxMissing}}, env)
		}
	case "cluster-damon":
		cf.register(fs, 300)
		token := fs.String("token", os.Getenv("SWITCHBOARD_DAMON_TOKEN"), "Damon IDENTIFY token (default $SWITCHBOARD_DAMON_TOKEN)")
		groups := fs.Int("groups", 10, "Damon groups the clients identify into")
		path := fs.String("path", "/damon", "Damon WebSocket path")
		hold := fs.Duration("hold", 2*time.Second, "how long the clients stay connected")
		run = func(c loadgen.Common, nodes []loadgen.Target, env loadgen.Env) (*loadgen.ClusterReport, error) {
			return loadgen.RunDamonStore(ctx, loadgen.DamonStoreConfig{Common: c, Nodes: nodes, Path: *path, Token: *token,
				Groups: *groups, Hold: *hold, Baseline: *baseline}, env)
		}
	case "cluster-kill":
		cf.register(fs, 0)
		victim := fs.Int("victim", 0, "index in --nodes of the node to kill")
		pid := fs.Int("victim-pid", 0, "pid of that node's process (it gets SIGKILL)")
		wait := fs.Duration("wait", 30*time.Second, "how long to wait for member_removed after the kill")
		run = func(c loadgen.Common, nodes []loadgen.Target, env loadgen.Env) (*loadgen.ClusterReport, error) {
			return loadgen.RunKill(ctx, loadgen.KillConfig{Common: c, Nodes: nodes, Victim: *victim, VictimPID: *pid, Wait: *wait}, env)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c, env, err := cf.finish()
	if err != nil {
		return err
	}
	ns, err := loadgen.ParseNodes(*nodes, c.Target)
	if err != nil {
		return err
	}
	rep, err := run(c, ns, env)
	if rep != nil {
		var out io.Writer = os.Stdout
		if cf.jsonOut {
			_ = rep.WriteJSON(out)
		} else {
			_ = rep.WriteText(out)
		}
	}
	return err
}
