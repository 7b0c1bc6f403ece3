package loadgen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PublishMode says which node receives each HTTP publish of a cluster run.
type PublishMode string

const (
	// PublishRoundRobin sends publish seq to node seq % len(nodes).
	PublishRoundRobin PublishMode = "round-robin"
	// PublishOne sends every publish to one node (ClusterConfig.PublishNode).
	PublishOne PublishMode = "one"
)

// ParsePublishMode accepts "round-robin" (or "rr") and "one".
func ParsePublishMode(s string) (PublishMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "round-robin", "rr", "roundrobin":
		return PublishRoundRobin, nil
	case "one", "single":
		return PublishOne, nil
	}
	return "", fmt.Errorf("publish mode %q: want round-robin or one", s)
}

// ParseNodes reads a comma-separated list of nodes, each host:port or a
// ws://, wss://, http:// or https:// URL (only host and port are kept: a
// Pusher server serves WebSocket and the HTTP API on one port). Every node
// gets base's credentials and AllowRemote, and is validated (the loopback
// rule holds for each).
func ParseNodes(s string, base Target) ([]Target, error) {
	var out []Target
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		hostport := f
		if strings.Contains(f, "://") {
			u, err := url.Parse(f)
			if err != nil {
				return nil, fmt.Errorf("node %q: %w", f, err)
			}
			switch u.Scheme {
			case "ws", "http":
			default:
				return nil, fmt.Errorf("node %q: scheme %s is not supported (ws or http)", f, u.Scheme)
			}
			hostport = u.Host
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", f, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("node %q: bad port", f)
		}
		t := base
		t.Host, t.Port = host, p
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("node %q: %w", f, err)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no nodes")
	}
	return out, nil
}

// clusterLayout places subscribers and publishes on nodes. Subscriber g
// (0 ≤ g < total) connects to node g % nodes and subscribes to channel
// g % channels; a node's pool holds its subscribers in order, so local
// index i of node j is subscriber i*nodes + j.
type clusterLayout struct {
	nodes, channels int
	mode            PublishMode
	pubNode         int
}

func (l clusterLayout) subscriber(node, local int) int { return local*l.nodes + node }

func (l clusterLayout) channelOf(g int) int { return g % l.channels }

// perNode is how many of total subscribers node j holds.
func (l clusterLayout) perNode(total, j int) int {
	if j >= total {
		return 0
	}
	return (total-j-1)/l.nodes + 1
}

// publishNode is the node that receives publish seq.
func (l clusterLayout) publishNode(seq int64) int {
	if l.mode == PublishOne {
		return l.pubNode
	}
	return int(seq % int64(l.nodes))
}

// interest records, per channel, how many subscribers each node holds.
type interest [][]int64 // [channel][node]

func newInterest(channels, nodes int) interest {
	in := make(interest, channels)
	for k := range in {
		in[k] = make([]int64, nodes)
	}
	return in
}

func (in interest) subscribers(k int) int64 {
	var n int64
	for _, v := range in[k] {
		n += v
	}
	return n
}

// otherNodes is how many nodes other than from have subscribers on k: the
// nodes a publication on from must reach through the broker.
func (in interest) otherNodes(k, from int) int {
	n := 0
	for j, v := range in[k] {
		if j != from && v > 0 {
			n++
		}
	}
	return n
}

// ClusterConfig: Conns subscribers spread round-robin over Nodes and over
// Channels public channels; each step publishes at one rate through the
// HTTP API of one node per publish (PublishMode). Deliveries are split into
// cross-node (received on another node than the publish went to) and local.
// Common.Target supplies the credentials; Nodes the addresses.
type ClusterConfig struct {
	Common
	Nodes          []Target
	Channels       int
	Rates          []float64
	StepDuration   time.Duration
	PublishWorkers int
	PublishMode    PublishMode
	PublishNode    int
	Limits         StepLimits
	KeepGoing      bool
	Pause          time.Duration
	// Metrics scrapes every node's /metrics for switchboard_cluster_*
	// counters (Switchboard only): store operations per subscribe and broker
	// messages per publish.
	Metrics bool
	// Baseline is the idle window, before subscribing, that measures the
	// background store operations (heartbeats) to subtract.
	Baseline time.Duration
}

func (c ClusterConfig) validate() error {
	if len(c.Nodes) == 0 {
		return errors.New("cluster: at least one node")
	}
	if c.Conns <= 0 || c.Channels <= 0 || c.Channels > c.Conns {
		return errors.New("cluster: need conns >= channels > 0")
	}
	if len(c.Rates) == 0 || c.StepDuration <= 0 || c.PublishWorkers <= 0 {
		return errors.New("cluster: need rates, a step duration and publish workers")
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return errors.New("cluster: rates must be > 0")
		}
	}
	switch c.PublishMode {
	case PublishRoundRobin:
	case PublishOne:
		if c.PublishNode < 0 || c.PublishNode >= len(c.Nodes) {
			return fmt.Errorf("cluster: publish node %d is not one of the %d nodes", c.PublishNode, len(c.Nodes))
		}
	default:
		return fmt.Errorf("cluster: publish mode %q", c.PublishMode)
	}
	return nil
}

// ClusterStep is the cluster view of one step.
type ClusterStep struct {
	Name string  `json:"name"`
	Rate float64 `json:"rate"`
	// Cross is the latency of deliveries received on another node than the
	// one the publish was sent to; Local of those on the same node.
	Cross Latency `json:"cross_node_latency"`
	Local Latency `json:"local_latency"`
	// OtherNodesPerPublish is, averaged over the step's publishes, how many
	// nodes other than the publishing one had subscribers on the channel.
	OtherNodesPerPublish float64 `json:"other_nodes_with_interest_per_publish"`
	// BrokerMessagesPerPublish is the growth of
	// switchboard_cluster_broker_messages_total (all nodes) per publish
	// sent (with Metrics).
	BrokerMessagesPerPublish *float64 `json:"broker_messages_per_publish,omitempty"`
}

// ClusterResult is the cluster part of a report.
type ClusterResult struct {
	Nodes              []string      `json:"nodes"`
	PublishMode        PublishMode   `json:"publish_mode"`
	PublishNode        int           `json:"publish_node,omitempty"`
	SubscribersPerNode []int         `json:"subscribers_per_node"`
	Steps              []ClusterStep `json:"steps"`
	// StorePerSubscribe is the store cost of connecting and subscribing
	// (with Metrics).
	StorePerSubscribe *OpCost `json:"store_ops_per_subscribe,omitempty"`
	// DamonStorePerConnect and DamonStorePerDisconnect: the cluster-damon
	// scenario's figures.
	DamonStorePerConnect    *OpCost `json:"damon_store_ops_per_connect,omitempty"`
	DamonStorePerDisconnect *OpCost `json:"damon_store_ops_per_disconnect,omitempty"`
	// Kill is the cluster-kill scenario's result.
	Kill *KillResult `json:"kill,omitempty"`
}

// ClusterReport is a Report with its cluster figures.
type ClusterReport struct {
	*Report
	Cluster *ClusterResult `json:"cluster"`
}

// WriteJSON writes the report as indented JSON.
func (r *ClusterReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the base report, then the cluster figures.
func (r *ClusterReport) WriteText(w io.Writer) error {
	if r.Report != nil {
		if err := r.Report.WriteText(w); err != nil {
			return err
		}
	}
	c := r.Cluster
	if c == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nodes %s, publishes %s", strings.Join(c.Nodes, " "), c.PublishMode)
	if c.PublishMode == PublishOne {
		fmt.Fprintf(&b, " (node %d)", c.PublishNode)
	}
	if len(c.SubscribersPerNode) > 0 {
		fmt.Fprintf(&b, ", subscribers per node %v", c.SubscribersPerNode)
	}
	b.WriteByte('\n')
	for _, s := range c.Steps {
		fmt.Fprintf(&b, "%s cross-node: %s\n", s.Name, fmtLatency(s.Cross))
		fmt.Fprintf(&b, "%s local:      %s\n", s.Name, fmtLatency(s.Local))
		fmt.Fprintf(&b, "%s other nodes with interest per publish %.2f", s.Name, s.OtherNodesPerPublish)
		if s.BrokerMessagesPerPublish != nil {
			fmt.Fprintf(&b, ", broker messages per publish %.3f", *s.BrokerMessagesPerPublish)
		}
		b.WriteByte('\n')
	}
	writeCost := func(what string, oc *OpCost) {
		if oc == nil {
			return
		}
		fmt.Fprintf(&b, "store operations per %s: %.3f (%d units, %.0f raw ops over %.1fs, %.1f background subtracted) %v\n",
			what, oc.PerUnit, oc.Units, oc.Raw, oc.DurationS, oc.Background, oc.ByOp)
	}
	writeCost("subscribe", c.StorePerSubscribe)
	writeCost("Damon connect", c.DamonStorePerConnect)
	writeCost("Damon disconnect", c.DamonStorePerDisconnect)
	if k := c.Kill; k != nil {
		writeKill(&b, k)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clusterRecorders are the per-step cross/local histograms.
type clusterRecorders struct {
	cross, local []*Recorder
	otherSum     []atomic.Int64 // sum over publishes of otherNodes
}

func newClusterRecorders(steps int) *clusterRecorders {
	cr := &clusterRecorders{cross: make([]*Recorder, steps), local: make([]*Recorder, steps), otherSum: make([]atomic.Int64, steps)}
	for i := range steps {
		cr.cross[i], cr.local[i] = NewRecorder(), NewRecorder()
	}
	return cr
}
