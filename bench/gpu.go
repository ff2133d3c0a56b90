package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"distore/backend"
	"distore/gpu"
)

func init() {
	register("gpu", "GPU tier: host→device Put and device→host Get of 64 MiB and 1 GiB vs plain cuMemcpy from pinned memory", benchGPU)
}

// gpuBenchSizes are the object sizes; gpuBudget bounds each measurement.
var gpuBenchSizes = []int64{64 << 20, 1 << 30}

const gpuBudget = 2 * time.Second

// benchGPU compares the tier's Put (from ordinary Go memory, checksummed, via
// the pinned staging lanes) and Get (into pinned memory) with the bus's speed:
// cuMemcpyHtoD / cuMemcpyDtoH between pinned host memory and device memory,
// measured in the same run on the same device.
func benchGPU(ctx context.Context, r *report) error {
	d, err := gpu.OpenDriver(0)
	if err != nil {
		return fmt.Errorf("%w: %v", errSkip, err)
	}
	defer d.Close()
	free, total, err := d.MemInfo()
	if err != nil {
		return err
	}
	maxSize := gpuBenchSizes[len(gpuBenchSizes)-1]
	r.note("device 0: %s, CUDA driver %d.%d, %s free of %s", d.Name(), d.DriverVersion()/1000,
		d.DriverVersion()%1000/10, backend.FormatBytes(free), backend.FormatBytes(total))

	// The tier: room for the largest object, and a Get cache that holds it.
	tier, err := gpu.New(backend.Config{
		gpu.KeyCapacity:  fmt.Sprint(maxSize + 64<<20),
		gpu.KeyHostCache: fmt.Sprint(maxSize + 64<<20),
	})
	if err != nil {
		return err
	}
	if err := tier.Setup(ctx); err != nil {
		return err
	}
	defer tier.Teardown(context.Background())

	r.table("size", "pinned H→D GB/s", "pageable H→D GB/s", "Put GB/s", "Put/pinned",
		"pinned D→H GB/s", "Get GB/s", "Get/pinned")
	var worst float64 = 1e9
	for _, size := range gpuBenchSizes {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := make([]byte, size)
		for i := 0; i < len(src); i += 8 {
			src[i] = byte(i*7 + i>>12) // touch every page, vary the bytes
		}
		h2d, d2h, pageable, err := gpuRaw(ctx, d, src)
		if err != nil {
			return err
		}
		put, err := gpuPut(ctx, tier, src)
		if err != nil {
			return err
		}
		get, err := gpuGet(ctx, tier, src)
		if err != nil {
			return err
		}
		r.row(sizeName(size), h2d, pageable, put, ratio(put, h2d), d2h, get, ratio(get, d2h))
		worst = min(worst, ratio(put, h2d), ratio(get, d2h))
	}
	r.note("target: Put/pinned and Get/pinned >= 0.8 (worst here %.2f). Put reads pageable Go memory and computes CRC-32C;", worst)
	r.note("Get copies into the tier's pinned Get cache; \"pageable\" is cuMemcpyHtoD straight from Go memory, for reference")

	// What a Get costs when its buffer must be pinned for it (no Get cache).
	uncached, err := gpu.New(backend.Config{gpu.KeyCapacity: fmt.Sprint(64<<20 + 1<<20), gpu.KeyHostCache: "0"})
	if err != nil {
		return err
	}
	if err := uncached.Setup(ctx); err != nil {
		return err
	}
	defer uncached.Teardown(context.Background())
	src := make([]byte, 64<<20)
	get, err := gpuGet(ctx, uncached, src)
	if err != nil {
		return err
	}
	r.table("size", "Get GB/s without Get cache (pins a buffer per Get)")
	r.row(sizeName(int64(len(src))), get)
	return nil
}

// gpuTime runs f once to warm up, then repeatedly for about gpuBudget (at
// least 3 times), and returns the mean time of one run.
func gpuTime(ctx context.Context, f func() (time.Duration, error)) (time.Duration, error) {
	if _, err := f(); err != nil {
		return 0, err
	}
	var total time.Duration
	n := 0
	for start := time.Now(); n < 3 || time.Since(start) < gpuBudget; n++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		d, err := f()
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total / time.Duration(n), nil
}

// gpuRaw measures plain driver copies of len(src) bytes: pinned host→device,
// device→pinned host, and host→device from pageable Go memory.
func gpuRaw(ctx context.Context, d *gpu.Driver, src []byte) (h2d, d2h, pageable float64, err error) {
	size := int64(len(src))
	pinned, err := d.HostAlloc(size)
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.HostFree(pinned)
	copy(pinned, src)
	dev, err := d.MemAlloc(size)
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.MemFree(dev)
	timed := func(f func() error) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			start := time.Now()
			err := f()
			return time.Since(start), err
		}
	}
	t, err := gpuTime(ctx, timed(func() error { return d.CopyHtoD(dev, pinned) }))
	if err != nil {
		return 0, 0, 0, err
	}
	h2d = gbps(size, t)
	if t, err = gpuTime(ctx, timed(func() error { return d.CopyDtoH(pinned, dev) })); err != nil {
		return 0, 0, 0, err
	}
	d2h = gbps(size, t)
	if t, err = gpuTime(ctx, timed(func() error { return d.CopyHtoD(dev, src) })); err != nil {
		return 0, 0, 0, err
	}
	return h2d, d2h, gbps(size, t), nil
}

// gpuPut measures Put of src (timed) followed by Delete (not timed).
func gpuPut(ctx context.Context, b backend.Backend, src []byte) (float64, error) {
	id := backend.ID(fmt.Sprintf("bench-put-%d", len(src)))
	t, err := gpuTime(ctx, func() (time.Duration, error) {
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
	})
	return gbps(int64(len(src)), t), err
}

// gpuGet measures Get+Bytes+Close of an object holding src, checking the
// bytes once.
func gpuGet(ctx context.Context, b backend.Backend, src []byte) (float64, error) {
	id := backend.ID(fmt.Sprintf("bench-get-%d", len(src)))
	info, err := b.Put(ctx, id, src, backend.PutOptions{})
	if err != nil {
		return 0, err
	}
	defer b.Delete(context.Background(), id)
	obj, err := b.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if backend.Checksum(obj.Bytes()) != info.Checksum {
		obj.Close()
		return 0, errors.New("get: bytes differ from the put")
	}
	if _, ok := obj.(gpu.DeviceObject); !ok {
		obj.Close()
		return 0, fmt.Errorf("get returned %T, not a gpu.DeviceObject", obj)
	}
	obj.Close()
	t, err := gpuTime(ctx, func() (time.Duration, error) {
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
	})
	return gbps(int64(len(src)), t), err
}
