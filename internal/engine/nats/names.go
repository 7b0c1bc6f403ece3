package natsengine

// names are the subjects, streams and bucket of one cluster. Options.Name
// (config cluster.name) keeps clusters on one NATS apart; without it they
// are the names used before it existed, so a running cluster keeps its
// state. A named cluster's subjects start with their own first token
// ("sb-NAME", "sbc-NAME"): a stream's subjects may not overlap another's,
// and "sbc.>" (the unnamed cache stream) would take in "sbc.NAME.>".
type names struct {
	data        string // + tok(ns) "." tok(channel): publications
	ctl         string // terminate broadcasts
	ping        string // the interest barrier's ping
	node        string // + node id: kicks addressed to one node
	bucket      string // the state KV bucket
	stateStream string // the bucket's stream
	kvPrefix    string // the bucket's subjects, before the key
	cacheStream string
	cachePrefix string // + tok(ns) "." tok(channel)
}

func newNames(cluster string) names {
	root, cacheRoot, bucket, cache := "sb", "sbc", "switchboard", "SB_CACHE"
	if cluster != "" {
		root, cacheRoot = "sb-"+cluster, "sbc-"+cluster
		bucket, cache = bucket+"_"+cluster, cache+"_"+cluster
	}
	return names{
		data:        root + ".m.",
		ctl:         root + ".ctl",
		ping:        root + ".ping",
		node:        root + ".node.",
		bucket:      bucket,
		stateStream: "KV_" + bucket,
		kvPrefix:    "$KV." + bucket + ".",
		cacheStream: cache,
		cachePrefix: cacheRoot + ".",
	}
}

func (n *names) dataSubject(ns, channel string) string { return n.data + tok(ns) + "." + tok(channel) }
func (n *names) nodeSubject(id string) string          { return n.node + id }
func (n *names) cacheSubject(ns, ch string) string     { return n.cachePrefix + tok(ns) + "." + tok(ch) }
