package cluster

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	peerBytes     *prometheus.CounterVec
	fetches       *prometheus.CounterVec
	transfers     prometheus.Counter
	fetchSeconds  prometheus.Histogram
	lookups       *prometheus.CounterVec
	spreadSeconds *prometheus.HistogramVec
	members       prometheus.Gauge
	conflicts     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		peerBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "distore_cluster_peer_bytes_total",
			Help: "Object bytes received from (in) and sent to (out) other servers."}, []string{"direction"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "distore_cluster_fetches_total",
			Help: "Peer fetches that ended, by result."}, []string{"result"}),
		transfers: prometheus.NewCounter(prometheus.CounterOpts{Name: "distore_cluster_transfers_started_total",
			Help: "Peer fetches started (concurrent gets of one ID share one)."}),
		fetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "distore_cluster_fetch_seconds",
			Help: "Duration of peer fetches.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "distore_cluster_lookups_total",
			Help: "Location lookups: at the home (home), answered here (local), asked of every member (broadcast), put claims (claim)."}, []string{"kind"}),
		spreadSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "distore_cluster_spread_seconds",
			Help:    "Duration of spreads to groups (chain) and of re-announcements after membership changes (reannounce).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"kind"}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "distore_cluster_members",
			Help: "Live members in this server's view."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Name: "distore_cluster_id_conflicts_total",
			Help: "IDs found held as two different objects (put while servers could not see each other)."}),
	}
	return m
}

// RegisterMetrics adds the node's metrics (distore_cluster_*) to reg.
func (n *Node) RegisterMetrics(reg prometheus.Registerer) error {
	m := n.met
	for _, c := range []prometheus.Collector{m.peerBytes, m.fetches, m.transfers, m.fetchSeconds, m.lookups, m.spreadSeconds, m.members, m.conflicts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "distore_cluster_directory_records",
			Help: "IDs this server is home of and knows holders for."}, func() float64 { return float64(n.dir.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "distore_cluster_healthy",
			Help: "1 while this server holds its etcd session."}, func() float64 {
			if n.tr.Healthy() {
				return 1
			}
			return 0
		})} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
