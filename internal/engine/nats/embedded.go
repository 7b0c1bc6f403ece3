package natsengine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// clusterName is the route cluster every embedded node joins; routes only
// connect servers that share it.
const clusterName = "switchboard"

// startEmbedded runs a NATS server inside this process: the engine connects
// in-process (the loopback client port exists only for the reason below), routes on o.Listen to every other
// entry of o.Routes, and clustered JetStream over those routes when there
// is more than this node.
func startEmbedded(o Options, token string) (*server.Server, error) {
	so := &server.Options{
		ServerName: o.NodeName,
		// DontListen would be the natural choice, but nats-server 2.15.3
		// starts routing only after the client accept loop signals that
		// its port is open, which DontListen skips: routes never connect.
		// So the client port is an ephemeral one on loopback, closed to
		// everyone without this process's random token.
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: token,
		NoSigs:        true,
		JetStream:     true,
		StoreDir:      o.StoreDir,
		// A bounded write deadline keeps one stuck route from stalling
		// the others' fan-out.
		WriteDeadline: 5 * time.Second,
	}
	switch peers := peerRoutes(o.Listen, o.Routes); {
	case o.Listen == "": // no route port: standalone
	case len(peers) == 0:
		// nats-server refuses clustered JetStream without a route to
		// solicit ("JetStream cluster requires configured routes"), and
		// the default configuration (listen set, routes empty) is that
		// case: run as a cluster of one instead of failing to start.
		o.Logger.Info("cluster.nats.routes names no other node: the embedded NATS server runs alone, "+
			"with unclustered JetStream, and accepts no routes; to form a cluster give every node "+
			"the same routes list naming each node", "listen", o.Listen)
	default:
		host, port, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsengine: listen %q: %w", o.Listen, err)
		}
		so.Cluster = server.ClusterOpts{
			Name: clusterName,
			Host: host,
			Port: port,
			// Three missed pings of 2 s: a dead route is noticed in ~6 s,
			// well inside the default node timeout.
			PingInterval: 2 * time.Second,
			MaxPingsOut:  3,
		}
		so.Routes = peers
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsengine: embedded server: %w", err)
	}
	logs := &serverLog{l: o.Logger.With("component", "nats-server")}
	ns.SetLoggerV2(logs, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		if last := logs.lastError.Load(); last != nil {
			return nil, fmt.Errorf("natsengine: embedded server not ready after 10s; it said: %s", *last)
		}
		return nil, errors.New("natsengine: embedded server not ready after 10s")
	}
	return ns, nil
}

// peerRoutes turns the shared route list into URLs, dropping this node's
// own entry so that every node can be given the same list. With Listen on
// a wildcard address the own entry names this host some other way
// (hostname, an interface address): an entry on Listen's port whose host
// is this machine is ours too. Counting ourselves as a peer would ask for
// more stream replicas than there are servers.
func peerRoutes(listen string, routes []string) []*url.URL {
	var out []*url.URL
	for _, r := range routes {
		hp := strings.TrimPrefix(strings.TrimPrefix(r, "nats://"), "nats-route://")
		if isSelf(listen, hp) {
			continue
		}
		out = append(out, &url.URL{Scheme: "nats", Host: hp})
	}
	return out
}

func isSelf(listen, hp string) bool {
	if normHostPort(hp) == normHostPort(listen) {
		return true
	}
	lh, lp, err1 := net.SplitHostPort(listen)
	h, p, err2 := net.SplitHostPort(hp)
	if err1 != nil || err2 != nil || lp != p || (lh != "" && lh != "0.0.0.0" && lh != "::") {
		return false
	}
	if name, err := os.Hostname(); err == nil && strings.EqualFold(h, name) {
		return true
	}
	ips, err := net.LookupIP(h)
	if err != nil {
		return false
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return true
			}
		}
	}
	return false
}

func normHostPort(hp string) string {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp
	}
	if h == "" || h == "0.0.0.0" || h == "::" || h == "127.0.0.1" || h == "::1" {
		h = "localhost"
	}
	return net.JoinHostPort(h, p)
}

func splitHostPort(hp string) (string, int, error) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return h, port, nil
}

// serverLog forwards the embedded server's log lines into slog: notices
// at info, warnings at warn, errors and fatals at error. It keeps the last
// error, which names the cause when the server never becomes ready.
type serverLog struct {
	l         *slog.Logger
	lastError atomic.Pointer[string]
}

func (s *serverLog) Noticef(f string, a ...any) { s.l.Info(fmt.Sprintf(f, a...)) }
func (s *serverLog) Warnf(f string, a ...any)   { s.l.Warn(fmt.Sprintf(f, a...)) }
func (s *serverLog) Fatalf(f string, a ...any)  { s.error(fmt.Sprintf(f, a...)) }
func (s *serverLog) Errorf(f string, a ...any)  { s.error(fmt.Sprintf(f, a...)) }
func (s *serverLog) Debugf(f string, a ...any)  { s.l.Debug(fmt.Sprintf(f, a...)) }
func (s *serverLog) Tracef(f string, a ...any)  { s.l.Debug(fmt.Sprintf(f, a...)) }

func (s *serverLog) error(line string) {
	s.lastError.Store(&line)
	s.l.Error(line)
}
