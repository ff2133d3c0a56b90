package servercmd

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"distore/backend"
	"distore/cluster"
	"distore/spill"
	"distore/tracker"
)

// ClusterConfig makes the server a member of a cluster (docs/cluster.md).
type ClusterConfig struct {
	// Etcd is "none" or empty (one server, no cluster), "embed" (an embedded
	// single-node etcd, data in DATA_DIR/etcd, serving on 127.0.0.1:2379 or
	// embed=HOST:PORT) or the client URLs of an etcd cluster.
	Etcd string `yaml:"etcd"`
	// Advertise is the host:port other servers reach this one at (default:
	// the listen address, which must then not be a wildcard).
	Advertise string `yaml:"advertise"`
	// NodeID names this server in the cluster (default: the advertised address).
	NodeID string `yaml:"node_id"`
	// Groups are the prefetch groups joined at start.
	Groups []string `yaml:"groups"`
	// LeaseTTL is how long a dead server stays listed (default 5s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
}

type groupFlag struct{ gs *[]string }

func (g groupFlag) String() string {
	if g.gs == nil {
		return ""
	}
	return strings.Join(*g.gs, ",")
}
func (g groupFlag) Set(v string) error { *g.gs = append(*g.gs, v); return nil }

// clusterFlags defines the cluster flags on fs and returns the function that
// applies the ones given over cfg (after the config file).
func clusterFlags(fs *flag.FlagSet) func(cfg *Config, set map[string]bool) error {
	var c ClusterConfig
	fs.StringVar(&c.Etcd, "etcd", "none", "cluster: none, embed[=HOST:PORT] (embedded etcd in DATA_DIR/etcd), or etcd URLs http://H:P,...")
	fs.StringVar(&c.Advertise, "advertise", "", "cluster: host:port peers reach this server at (default: the listen address)")
	fs.StringVar(&c.NodeID, "node-id", "", "cluster: this server's name (default: the advertised address)")
	fs.Var(groupFlag{&c.Groups}, "group", "cluster: prefetch group to join at start (repeatable)")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", tracker.DefaultTTL, "cluster: lease TTL; a dead server is dropped within it")
	return func(cfg *Config, set map[string]bool) error {
		if set["etcd"] {
			cfg.Cluster.Etcd = c.Etcd
		}
		if set["advertise"] {
			cfg.Cluster.Advertise = c.Advertise
		}
		if set["node-id"] {
			cfg.Cluster.NodeID = c.NodeID
		}
		if set["group"] {
			cfg.Cluster.Groups = c.Groups
		}
		if set["lease-ttl"] {
			cfg.Cluster.LeaseTTL = c.LeaseTTL
		}
		for _, g := range cfg.Cluster.Groups {
			if err := tracker.ValidGroup(g); err != nil {
				return usageError{err}
			}
		}
		if t := cfg.Cluster.LeaseTTL; t != 0 && t < time.Second {
			return usageError{fmt.Errorf("lease TTL %v: at least 1s", t)}
		}
		return nil
	}
}

// member is what the server serves as a cluster member.
type member struct {
	// Backend is served: a cluster.Node over the stack, or the stack alone.
	Backend backend.Backend
	// Handler serves /v1/cluster/ (nil without a cluster).
	Handler http.Handler
	node    *cluster.Node
	close   func()
}

// Register adds the cluster metrics to the server's registry.
func (m *member) Register(reg prometheus.Registerer) error {
	if m.node == nil {
		return nil
	}
	return m.node.RegisterMetrics(reg)
}

// Close leaves the cluster (revoking the lease: others drop this server at once).
func (m *member) Close() {
	if m.close != nil {
		m.close()
	}
}

// startCluster makes st a cluster member when --etcd is set. With no etcd the
// member serves st alone.
func startCluster(ctx context.Context, cfg Config, st *spill.Stack, listen net.Addr, log *slog.Logger) (*member, error) {
	cc := cfg.Cluster
	if cc.Etcd == "" || cc.Etcd == "none" {
		return &member{Backend: st}, nil
	}
	adv := cc.Advertise
	if adv == "" {
		tcp, _ := listen.(*net.TCPAddr)
		if tcp == nil || tcp.IP.IsUnspecified() {
			return nil, usageError{fmt.Errorf("listening on %v: give --advertise HOST:PORT for peers", listen)}
		}
		adv = listen.String()
	}
	id := cc.NodeID
	if id == "" {
		id = adv
	}
	cli, closeEtcd, err := tracker.Connect(ctx, cc.Etcd, cfg.DataDir, log)
	if err != nil {
		return nil, err
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		closeEtcd()
		return nil, err
	}
	self := tracker.Member{ID: id, Addr: adv, Tiers: strings.Split(cfg.Levels, ","), Capacity: stats.Capacity, Groups: cc.Groups}
	tr, err := tracker.Open(ctx, tracker.Options{Client: cli, Self: self, TTL: cc.LeaseTTL, Logger: log})
	if err != nil {
		closeEtcd()
		return nil, err
	}
	node, err := cluster.New(cluster.Options{Local: st, Tracker: tr, SpoolDir: filepath.Join(cfg.DataDir, "spool"),
		Token: os.Getenv("DISTORE_TOKEN"), Logger: log})
	if err != nil {
		tr.Close()
		closeEtcd()
		return nil, err
	}
	log.Info("cluster member", "node", id, "advertise", adv, "etcd", cc.Etcd, "groups", cc.Groups, "lease_ttl", tr.TTL(),
		"members", len(tr.Members()))
	return &member{Backend: node, Handler: node.Handler(), node: node, close: func() {
		node.Teardown(context.Background())
		tr.Close()
		closeEtcd()
	}}, nil
}

// nodeGroups serves the local socket's register_group and
// put(prefetch_group=) from the cluster, as /v1/cluster/ does over HTTP.
type nodeGroups struct{ n *cluster.Node }

func (g nodeGroups) Register(ctx context.Context, group string) error {
	return g.n.Tracker().JoinGroup(ctx, group)
}

func (g nodeGroups) Spread(ctx context.Context, group string, id backend.ID) error {
	_, err := g.n.SpreadGroup(id, group)
	return err
}
