package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"distore/backend"
	"distore/gpu"
)

func init() {
	register("gpu", "GPU tier: host→device Put and device→host Get of 64 MiB and 1 GiB vs plain cuMemcpy from pinned memory", benchGPU)
}

// gpuBenchSizes are the object sizes. Each size is measured in rounds that
// run every way once, in turn, for at least gpuMinRounds rounds and
// gpuBudget, so drift (clocks, temperature, other work) hits every way alike.
var gpuBenchSizes = []int64{64 << 20, 1 << 30}

const (
	gpuBudget    = 3 * time.Second
	gpuMinRounds = 7
	gpuMaxRounds = 200
)

// gpuWay is one way of moving the bytes; run times one move.
type gpuWay struct {
	name  string
	base  int // index of the way it is compared with, or -1
	run   func() (time.Duration, error)
	times []time.Duration
}

// benchGPU compares the tier's Put (from ordinary Go memory, checksummed, via
// the pinned staging lanes) and Get (into pinned memory) with the bus's speed:
// cuMemcpyHtoD / cuMemcpyDtoH between pinned host memory and device memory,
// measured in the same run on the same device.
func benchGPU(ctx context.Context, r *report) error {
	d, err := gpu.OpenDriver(0)
	if err != nil {
		return fmt.Errorf("%w: no GPU here: %v", errSkip, err)
	}
	defer d.Close()
	free, total, err := d.MemInfo()
	if err != nil {
		return err
	}
	maxSize := gpuBenchSizes[len(gpuBenchSizes)-1]
	r.note("device 0: %s (%s), CUDA driver %d.%d, %s free of %s", d.Name(), d.UUID(), d.DriverVersion()/1000,
		d.DriverVersion()%1000/10, backend.FormatBytes(free), backend.FormatBytes(total))

	// The tier: room for the object Get reads and the one Put writes, and a
	// Get cache that holds the largest.
	tier, err := openGPUTier(ctx, 2*maxSize+64<<20, maxSize+64<<20)
	if err != nil {
		return err
	}
	defer tier.Teardown(context.Background())
	// A tier without Get cache: each Get pins a buffer of its own.
	uncached, err := openGPUTier(ctx, gpuBenchSizes[0]+1<<20, 0)
	if err != nil {
		return err
	}
	defer uncached.Teardown(context.Background())

	r.table("size", "way", "best GB/s", "median GB/s", "best ratio", "median ratio", "runs")
	worst := 1e9
	for _, size := range gpuBenchSizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		ways, cleanup, err := gpuWays(ctx, d, tier, uncached, size, size == gpuBenchSizes[0])
		if err == nil {
			err = gpuRounds(ctx, ways)
		}
		cleanup()
		if err != nil {
			return fmt.Errorf("%s: %w", sizeName(size), err)
		}
		for _, w := range ways {
			best, med := gbps(size, slices.Min(w.times)), gbps(size, median(w.times))
			if w.base < 0 {
				r.row(sizeName(size), w.name, best, med, "1", "1", len(w.times))
				continue
			}
			b := ways[w.base]
			rb, rm := ratio(best, gbps(size, slices.Min(b.times))), ratio(med, gbps(size, median(b.times)))
			r.row(sizeName(size), w.name, best, med, fmt.Sprintf("%.2f", rb), fmt.Sprintf("%.2f", rm), len(w.times))
			if w.name == "tier Put" || w.name == "tier Get" {
				worst = min(worst, rm)
			}
		}
	}
	r.note("ratios: against the pinned cuMemcpy of the same direction, best against best and median against median.")
	r.note("target: tier Put and Get >= 0.8 (worst median ratio here %.2f). Put reads pageable Go memory and computes CRC-32C;", worst)
	r.note("Get copies into the tier's pinned Get cache; pageable H→D is cuMemcpyHtoD straight from Go memory, for reference.")
	return nil
}

func openGPUTier(ctx context.Context, capacity, hostCache int64) (*gpu.Tier, error) {
	t, err := gpu.New(backend.Config{gpu.KeyCapacity: fmt.Sprint(capacity), gpu.KeyHostCache: fmt.Sprint(hostCache)})
	if err != nil {
		return nil, err
	}
	if err := t.Setup(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// gpuWays prepares the ways of moving size bytes: plain driver copies
// between pinned host memory and device memory, the tier's Put and Get, and
// for reference a copy from pageable Go memory (and, with uncachedGet, a Get
// that pins its own buffer). cleanup frees what they use.
func gpuWays(ctx context.Context, d *gpu.Driver, tier, uncached backend.Backend, size int64, uncachedGet bool) (ways []*gpuWay, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
			cleanup = func() {}
		}
	}()
	src := make([]byte, size)
	for i := 0; i < len(src); i += 8 {
		src[i] = byte(i*7 + i>>12) // touch every page, vary the bytes
	}
	pinned, err := d.HostAlloc(size)
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { d.HostFree(pinned) })
	copy(pinned, src)
	dev, err := d.MemAlloc(size)
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { d.MemFree(dev) })
	get, err := gpuGetWay(ctx, tier, src)
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { tier.Delete(context.Background(), gpuGetID(len(src))) })
	timed := func(f func() error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			start := time.Now()
			err := f()
			return time.Since(start), err
		}
	}
	ways = []*gpuWay{
		{name: "pinned H→D cuMemcpyHtoD", base: -1, run: timed(func() error { return d.CopyHtoD(dev, pinned) })},
		{name: "tier Put", base: 0, run: gpuPutWay(ctx, tier, src)},
		{name: "pageable H→D cuMemcpyHtoD", base: 0, run: timed(func() error { return d.CopyHtoD(dev, src) })},
		{name: "pinned D→H cuMemcpyDtoH", base: -1, run: timed(func() error { return d.CopyDtoH(pinned, dev) })},
		{name: "tier Get", base: 3, run: get},
	}
	if uncachedGet {
		uget, err := gpuGetWay(ctx, uncached, src)
		if err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, func() { uncached.Delete(context.Background(), gpuGetID(len(src))) })
		ways = append(ways, &gpuWay{name: "tier Get, no Get cache", base: 3, run: uget})
	}
	return ways, cleanup, nil
}

// gpuRounds runs one untimed round to warm up, then rounds of every way in
// turn until gpuBudget has passed and gpuMinRounds are done.
func gpuRounds(ctx context.Context, ways []*gpuWay) error {
	for _, w := range ways {
		if _, err := w.run(); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
	}
	start := time.Now()
	for n := 0; n < gpuMaxRounds && (n < gpuMinRounds || time.Since(start) < gpuBudget); n++ {
		for _, w := range ways {
			if err := ctx.Err(); err != nil {
				return err
			}
			t, err := w.run()
			if err != nil {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			w.times = append(w.times, t)
		}
	}
	return nil
}

// median of times (not empty).
func median(times []time.Duration) time.Duration {
	s := slices.Clone(times)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// gpuPutWay times a Put of src; the Delete after it is not timed.
func gpuPutWay(ctx context.Context, b backend.Backend, src []byte) func() (time.Duration, error) {
	id := backend.ID(fmt.Sprintf("bench-put-%d", len(src)))
	return func() (time.Duration, error) {
		start := time.Now()
		info, err := b.Put(ctx, id, src, backend.PutOptions{})
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if info.Size != int64(len(src)) {
			return 0, fmt.Errorf("put stored %d bytes of %d", info.Size, len(src))
		}
		return d, b.Delete(ctx, id)
	}
}

func gpuGetID(n int) backend.ID { return backend.ID(fmt.Sprintf("bench-get-%d", n)) }

// gpuGetWay stores src, checks one Get of it, and returns a way that times
// Get+Bytes+Close.
func gpuGetWay(ctx context.Context, b backend.Backend, src []byte) (func() (time.Duration, error), error) {
	id := gpuGetID(len(src))
	info, err := b.Put(ctx, id, src, backend.PutOptions{})
	if err != nil {
		return nil, err
	}
	obj, err := b.Get(ctx, id)
	if err != nil {
		b.Delete(context.Background(), id)
		return nil, err
	}
	_, isDev := obj.(gpu.DeviceObject)
	sum := backend.Checksum(obj.Bytes())
	obj.Close()
	switch {
	case !isDev:
		err = fmt.Errorf("get returned %T, not a gpu.DeviceObject", obj)
	case sum != info.Checksum:
		err = errors.New("get: bytes differ from the put")
	}
	if err != nil {
		b.Delete(context.Background(), id)
		return nil, err
	}
	return func() (time.Duration, error) {
		start := time.Now()
		obj, err := b.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		n := len(obj.Bytes())
		obj.Close()
		if n != len(src) {
			return 0, fmt.Errorf("get returned %d bytes of %d", n, len(src))
		}
		return time.Since(start), nil
	}, nil
}
