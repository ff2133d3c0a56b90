package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"distore/backend"
	"distore/wire/localproto"
)

// metrics are the server's Prometheus instruments.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter

	// The local socket's: requests by op, and references clients hold.
	localRequests *prometheus.CounterVec
	localOps      [256]atomic.Pointer[prometheus.Counter]
	localRefs     prometheus.Gauge

	// series caches the instruments of each route and status: looking them
	// up by label values hashes and locks on every request.
	series sync.Map // seriesKey -> *series
}

type seriesKey struct {
	route  string
	status int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, b backend.Backend) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distore_http_requests_total",
			Help: "HTTP requests served, by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "distore_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, body included, by route and status code.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 11), // 50µs .. 52s
		}, []string{"route", "code"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "distore_http_received_bytes_total",
			Help: "Object bytes received in request bodies.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "distore_http_sent_bytes_total",
			Help: "Bytes sent in response bodies.",
		}),
	}
	m.localRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "distore_local_requests_total",
		Help: "Requests on the local socket, by op (a get a client answers from a reference it kept is not one).",
	}, []string{"op"})
	m.localRefs = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "distore_local_references",
		Help: "Object references local clients hold (open objects and the ones they keep for a get again).",
	})
	reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.localRequests, m.localRefs, &tierCollector{b: b})
	return m
}

// localOp counts one local socket request.
func (m *metrics) localOp(op byte) {
	c := m.localOps[op].Load()
	if c == nil {
		v := m.localRequests.WithLabelValues(localproto.OpName(op))
		c = &v
		m.localOps[op].Store(c)
	}
	(*c).Inc()
}

// observe records one finished request.
func (m *metrics) observe(route string, status int, d time.Duration, out int64) {
	k := seriesKey{route, status}
	v, ok := m.series.Load(k)
	if !ok {
		// Routes are the mux's patterns and statuses a few codes: the cache
		// stays small.
		code := strconv.Itoa(status)
		v, _ = m.series.LoadOrStore(k, &series{
			requests: m.requests.WithLabelValues(route, code),
			latency:  m.latency.WithLabelValues(route, code),
		})
	}
	sr := v.(*series)
	sr.requests.Inc()
	sr.latency.Observe(d.Seconds())
	if out > 0 {
		m.bytesOut.Add(float64(out))
	}
}

var (
	tierCapacity = prometheus.NewDesc("distore_tier_capacity_bytes", "Capacity of the tier.", []string{"tier", "level"}, nil)
	tierUsed     = prometheus.NewDesc("distore_tier_used_bytes", "Bytes stored in the tier.", []string{"tier", "level"}, nil)
	tierObjects  = prometheus.NewDesc("distore_tier_objects", "Objects stored in the tier.", []string{"tier", "level"}, nil)
	tierPinned   = prometheus.NewDesc("distore_tier_pinned_bytes", "Bytes held by pinned objects in the tier.", []string{"tier", "level"}, nil)
	tierPinnedN  = prometheus.NewDesc("distore_tier_pinned_objects", "Pinned objects in the tier.", []string{"tier", "level"}, nil)
)

// tierCollector reports the backend's Stats at scrape time, per tier.
type tierCollector struct{ b backend.Backend }

func (c *tierCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tierCapacity, tierUsed, tierObjects, tierPinned, tierPinnedN} {
		ch <- d
	}
}

func (c *tierCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.b.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(tierUsed, err)
		return
	}
	tiers := st.Tiers
	if len(tiers) == 0 {
		tiers = []backend.Stats{st}
	}
	for _, t := range tiers {
		lv := []string{t.Tier, t.Level.String()}
		ch <- prometheus.MustNewConstMetric(tierCapacity, prometheus.GaugeValue, float64(t.Capacity), lv...)
		ch <- prometheus.MustNewConstMetric(tierUsed, prometheus.GaugeValue, float64(t.Used), lv...)
		ch <- prometheus.MustNewConstMetric(tierObjects, prometheus.GaugeValue, float64(t.Objects), lv...)
		ch <- prometheus.MustNewConstMetric(tierPinned, prometheus.GaugeValue, float64(t.Pinned), lv...)
		ch <- prometheus.MustNewConstMetric(tierPinnedN, prometheus.GaugeValue, float64(t.PinnedObjects), lv...)
	}
}

// recorder is the ResponseWriter the handlers see: it remembers the status
// and counts the body bytes. It has no ReadFrom, so that io.Copy into it
// goes through Write, chunk by chunk, each under a renewed write deadline
// (net/http's ReadFrom would copy a whole stream under one).
type recorder struct {
	http.ResponseWriter
	status   int
	n        int64
	deadline writeDeadline // the response's write deadline (set up by ServeHTTP)
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes p in chunks of at most writeChunk, each under a renewed write
// deadline (when ServeHTTP set one up): a client that stops reading is cut
// off within the I/O timeout however the handler writes.
func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	done := 0
	for {
		if w.deadline.active() {
			w.deadline.renew(time.Now())
		}
		n, err := w.ResponseWriter.Write(p[done:min(len(p), done+writeChunk)])
		done += n
		w.n += int64(n)
		if err != nil || done == len(p) {
			return done, err
		}
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
