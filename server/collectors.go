package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"distore/backend"
	"distore/spill"
)

// registerBackendCollectors adds the collectors that know b's concrete type:
// the spill and promote counters of a *spill.Stack.
func registerBackendCollectors(reg *prometheus.Registry, b backend.Backend) {
	// A wrapper (a cluster node over the stack) says what it wraps.
	for u, ok := b.(interface{ Unwrap() backend.Backend }); ok; u, ok = b.(interface{ Unwrap() backend.Backend }) {
		b = u.Unwrap()
	}
	if st, ok := b.(*spill.Stack); ok {
		reg.MustRegister(&spillCollector{st: st})
	}
}

func spillDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("distore_spill_"+name, help, labels, nil)
}

var (
	spilledObjects  = spillDesc("spilled_objects_total", "Objects moved down a tier.")
	spilledBytes    = spillDesc("spilled_bytes_total", "Bytes moved down a tier.")
	promotedObjects = spillDesc("promoted_objects_total", "Objects moved up a tier.")
	promotedBytes   = spillDesc("promoted_bytes_total", "Bytes moved up a tier.")
	moveSeconds     = spillDesc("move_seconds_total", "Time spent in completed moves, summed over moves.")
	movesInFlight   = spillDesc("moves_in_flight", "Moves running now.")
	movesFailed     = spillDesc("moves_failed_total", "Moves that failed (the object stayed where it was).")
	movesUndone     = spillDesc("moves_undone_total", "Moves abandoned because a pin or delete won the race.")
	putsWaited      = spillDesc("puts_waited_total", "Puts and prefetches that waited for the mover to make room.")
	putWaitSeconds  = spillDesc("put_wait_seconds_total", "Total time puts waited for room.")
	putsBelow       = spillDesc("puts_below_total", "Puts placed below the fastest tier that could hold them.")
	orphanCopies    = spillDesc("orphan_copies_total", "Source copies not deleted after a move (removed at next start).")
	tierReserved    = spillDesc("tier_reserved_bytes", "Bytes being written into the tier.", "tier", "level")
	tierLeaving     = spillDesc("tier_leaving_bytes", "Bytes being moved out of the tier.", "tier", "level")
	tierOverhead    = spillDesc("tier_overhead_bytes", "Bytes the tier uses beyond its objects.", "tier", "level")
	tierHigh        = spillDesc("tier_high_watermark_ratio", "Fraction of capacity above which the tier spills.", "tier", "level")
	tierLow         = spillDesc("tier_low_watermark_ratio", "Fraction of capacity the tier spills down to.", "tier", "level")
)

// spillCollector reads Stack.Metrics (an in-memory snapshot, no I/O) at
// scrape time.
type spillCollector struct{ st *spill.Stack }

func (c *spillCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{spilledObjects, spilledBytes, promotedObjects, promotedBytes, moveSeconds,
		movesInFlight, movesFailed, movesUndone, putsWaited, putWaitSeconds, putsBelow, orphanCopies,
		tierReserved, tierLeaving, tierOverhead, tierHigh, tierLow} {
		ch <- d
	}
}

func (c *spillCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.st.Metrics()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	counter(spilledObjects, float64(m.SpilledObjects))
	counter(spilledBytes, float64(m.SpilledBytes))
	counter(promotedObjects, float64(m.PromotedObjects))
	counter(promotedBytes, float64(m.PromotedBytes))
	counter(moveSeconds, m.MoveTime.Seconds())
	counter(movesFailed, float64(m.MovesFailed))
	counter(movesUndone, float64(m.MovesUndone))
	counter(putsWaited, float64(m.PutsWaited))
	counter(putWaitSeconds, m.PutWaitTime.Seconds())
	counter(putsBelow, float64(m.PutsBelow))
	counter(orphanCopies, float64(m.OrphanCopies))
	ch <- prometheus.MustNewConstMetric(movesInFlight, prometheus.GaugeValue, float64(m.MovesInFlight))
	for _, t := range m.Tiers {
		lv := []string{t.Tier, t.Level.String()}
		ch <- prometheus.MustNewConstMetric(tierReserved, prometheus.GaugeValue, float64(t.Reserved), lv...)
		ch <- prometheus.MustNewConstMetric(tierLeaving, prometheus.GaugeValue, float64(t.Leaving), lv...)
		ch <- prometheus.MustNewConstMetric(tierOverhead, prometheus.GaugeValue, float64(t.Overhead), lv...)
		ch <- prometheus.MustNewConstMetric(tierHigh, prometheus.GaugeValue, t.HighWatermark, lv...)
		ch <- prometheus.MustNewConstMetric(tierLow, prometheus.GaugeValue, t.LowWatermark, lv...)
	}
}
