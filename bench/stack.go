package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"distore/backend"
	_ "distore/disk"
	_ "distore/shmem"
	"distore/spill"
)

var (
	stackMem     = flag.String("stack.mem", "256MiB", "stack suite: capacity of the memory tier; the suite puts 3× this")
	stackObj     = flag.String("stack.object", "1MiB", "stack suite: object size")
	stackWriters = flag.Int("stack.writers", 4, "stack suite: concurrent writers (the same for the baseline)")
	stackSync    = flag.Bool("stack.sync", true, "stack suite: the disk tier's sync option (baseline and stack alike)")
	stackDir     = flag.String("stack.dir", "", "stack suite: directory for the disk tiers (default: the system's temp dir)")
)

func init() {
	register("stack", "memory,disk stack: sustained put of 3× the memory tier vs the disk tier alone; put latency", runStack)
}

func runStack(ctx context.Context, r *report) error {
	memCap, err := backend.ParseBytes(*stackMem)
	if err != nil {
		return fmt.Errorf("-stack.mem: %v", err)
	}
	size, err := backend.ParseBytes(*stackObj)
	if err != nil || size <= 0 {
		return fmt.Errorf("-stack.object: %v", err)
	}
	root, err := os.MkdirTemp(*stackDir, "distore-bench-stack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	total := 3 * memCap
	n := total / size
	src := make([]byte, 64<<20+size)
	_, _ = rand.Read(src)
	diskCfg := func(name string) backend.Config {
		return backend.Config{"dir": filepath.Join(root, name), "sync": fmt.Sprint(*stackSync)}
	}
	r.note("%d objects of %s (%s) into a %s memory tier, %d writers, disk sync=%v, dir %s",
		n, sizeName(size), backend.FormatBytes(n*size), backend.FormatBytes(memCap), *stackWriters, *stackSync, root)

	// Baseline: the disk tier alone, same objects, same writers — run before
	// and after the stack, on a fresh directory each time, so that a change in
	// the machine's load during the run shows rather than skews the ratio.
	baseline := func(name string) (putResult, error) {
		disk, err := backend.Open(ctx, "disk", diskCfg(name))
		if err != nil {
			return putResult{}, err
		}
		res, err := putAll(ctx, disk, n, size, src)
		_ = disk.Teardown(context.Background())
		_ = os.RemoveAll(filepath.Join(root, name))
		if err != nil {
			return putResult{}, fmt.Errorf("disk baseline: %w", err)
		}
		return res, nil
	}
	before, err := baseline("before")
	if err != nil {
		return err
	}

	tiers, err := spill.ParseTiers("memory,disk", map[string]backend.Config{
		"memory": {"capacity": fmt.Sprint(memCap)},
		"disk":   diskCfg("stack"),
	})
	if err != nil {
		return err
	}
	s, err := spill.Open(ctx, spill.Options{Tiers: tiers})
	if err != nil {
		return err
	}
	defer s.Teardown(context.Background())
	res, err := putAll(ctx, s, n, size, src)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	settleStart := time.Now()
	if err := s.Settle(ctx); err != nil {
		return err
	}
	settle := time.Since(settleStart)
	m := s.Metrics()
	// Every object must be there: a fast stack that loses data is no stack.
	for i := range n {
		if _, err := s.ObjectInfo(ctx, benchID(i)); err != nil {
			return fmt.Errorf("after the run: %w", err)
		}
	}
	_ = s.Teardown(context.Background())
	after, err := baseline("after")
	if err != nil {
		return err
	}

	r.table("way", "put GB/s", "stack/disk", "p50 ms", "p99 ms", "max ms")
	b1, b2, sg := gbps(n*size, before.wall), gbps(n*size, after.wall), gbps(n*size, res.wall)
	bg := (b1 + b2) / 2
	r.row("disk tier alone, before", b1, ratio(b1, bg), before.p(0.5), before.p(0.99), before.p(1))
	r.row("memory,disk stack", sg, ratio(sg, bg), res.p(0.5), res.p(0.99), res.p(1))
	r.row("disk tier alone, after", b2, ratio(b2, bg), after.p(0.5), after.p(0.99), after.p(1))
	r.note("stack/disk is against the mean of the two disk runs")
	r.note("stack: %d spilled (%s), %d puts waited %.2fs in all, %d put below memory, move time %.2fs (summed over %d concurrent moves), settle after the last put %.2fs",
		m.SpilledObjects, backend.FormatBytes(m.SpilledBytes), m.PutsWaited, m.PutWaitTime.Seconds(), m.PutsBelow,
		m.MoveTime.Seconds(), spill.DefaultMaxConcurrentMoves, settle.Seconds())
	for _, t := range m.Tiers {
		r.note("  tier %-6s %5d objects, %s used of %s", t.Tier, t.Objects, backend.FormatBytes(t.Used), backend.FormatBytes(t.Capacity))
	}
	return nil
}

// putResult is a put run: its wall time and each put's latency.
type putResult struct {
	wall time.Duration
	lat  []time.Duration // sorted
}

// p returns the q-quantile of the latencies in milliseconds.
func (p putResult) p(q float64) float64 {
	if len(p.lat) == 0 {
		return 0
	}
	i := min(int(q*float64(len(p.lat))), len(p.lat)-1)
	return float64(p.lat[i].Microseconds()) / 1000
}

func benchID(i int64) backend.ID { return backend.ID(fmt.Sprintf("obj-%07d", i)) }

// putAll puts n objects of size bytes (slices of src at varying offsets) with
// the writers flag's concurrency, timing each put.
func putAll(ctx context.Context, b backend.Backend, n, size int64, src []byte) (putResult, error) {
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	errs := make(chan error, *stackWriters)
	start := time.Now()
	for range max(*stackWriters, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				off := (i * 4099) % (int64(len(src)) - size)
				t0 := time.Now()
				if _, err := b.Put(ctx, benchID(i), src[off:off+size], backend.PutOptions{}); err != nil {
					errs <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return putResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return putResult{}, err
	}
	slices.Sort(lat)
	return putResult{wall: wall, lat: lat}, nil
}
