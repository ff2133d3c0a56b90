package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"distore/backend"
	"distore/shmem" // the "memory" tier
)

func init() {
	register("memory", "Memory tier (shared-memory arena): put/get vs copy(), get latency, 4 KiB put+get+delete rate, Go heap at 4 GiB", benchMemory)
}

// benchMemory measures the memory tier against Go's copy() into memory that
// is already touched, measured in the same run.
func benchMemory(ctx context.Context, r *report) error {
	const capacity = 4<<30 + 512<<20
	start := time.Now()
	b, err := backend.Open(ctx, "memory", backend.Config{"capacity": fmt.Sprint(capacity)})
	if err != nil {
		return err
	}
	defer b.Teardown(context.Background())
	r.note("store: %s, set up (mapped and pre-faulted) in %.2fs; load average %s", backend.FormatBytes(capacity), time.Since(start).Seconds(), loadAverage())

	// A second, smaller store copies large objects with 4 goroutines whatever
	// the CPU count, to show what the parallel copy adds (or costs).
	quad, err := backend.Open(ctx, "memory", backend.Config{"capacity": "300MiB", "copy_threads": "4"})
	if err != nil {
		return err
	}
	defer quad.Teardown(context.Background())

	r.table("size", "put ops/s", "put GB/s", "copy GB/s", "crc GB/s", "put/copy", "get ns", "get p99 ns", "get ops/s")
	type run struct {
		name  string
		b     backend.Backend
		size  int64
		round int64 // bytes written per round
	}
	for _, c := range []run{
		{"", b, 4 << 10, 256 << 20}, {"", b, 1 << 20, 256 << 20}, {"", b, 64 << 20, 256 << 20},
		{" (4 copy threads)", quad, 64 << 20, 256 << 20},
	} {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := make([]byte, c.size)
		for i := range src {
			src[i] = byte(i*7 + i>>12)
		}
		// Each round writes beyond the caches, for the baseline and the tier alike.
		copyRate, crcRate, putN, putD, err := measurePutVsCopy(ctx, c.b, src, max(1, int(c.round/c.size)))
		if err != nil {
			return err
		}
		getAvg, getP99, err := measureGet(ctx, c.b, src)
		if err != nil {
			return err
		}
		putRate := gbps(int64(putN)*c.size, putD)
		r.row(sizeName(c.size)+c.name, float64(putN)/putD.Seconds(), putRate, copyRate, crcRate, ratio(putRate, copyRate),
			float64(getAvg.Nanoseconds()), float64(getP99.Nanoseconds()), 1/getAvg.Seconds())
	}
	r.note("put copies once and computes the CRC-32C in the same pass; objects of 2 MiB and more are copied by copy_threads goroutines (default: the CPUs, at most 4; here %d)", shmem.DefaultCopyThreads())
	r.note("copy: Go copy() on one goroutine into memory touched beforehand, alternated with the puts; crc: backend.Checksum (CRC-32C) of the same bytes")
	r.note("one goroutine's put cannot beat the slower of copy and crc; get is zero-copy (Bytes() aliases the mapping)")
	r.note("targets: 64MiB put/copy >= 0.7; get < 2000 ns at every size")

	// Put+get+delete of 4 KiB objects on one goroutine.
	rate, cpuNs, err := measurePGD(ctx, b, 4<<10)
	if err != nil {
		return err
	}
	r.table("op", "ops/s", "ns/op", "cpu ns/op", "target ops/s")
	r.row("4KiB put+get+delete", rate, 1e9/rate, cpuNs, 1e6)
	r.note("best of 3 rounds of 0.5 s; cpu ns/op is the process's CPU time (all threads, GC included) per op: what the op costs when the machine is shared")

	// Go heap while the store holds 4 GiB of objects.
	heap0 := heapInUse()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	fill := time.Now()
	var held int64
	for i := 0; held < 4<<30; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := b.Put(ctx, backend.ID(fmt.Sprintf("heap-%05d", i)), chunk, backend.PutOptions{}); err != nil {
			return err
		}
		held += int64(len(chunk))
	}
	fillD := time.Since(fill)
	heap1 := heapInUse()
	st, err := b.Stats(ctx)
	if err != nil {
		return err
	}
	r.table("objects held", "count", "fill GB/s", "Go heap before", "Go heap after", "target")
	r.row(backend.FormatBytes(held), st.Objects, gbps(held, fillD), backend.FormatBytes(int64(heap0)), backend.FormatBytes(int64(heap1)), "< 64.0 MiB")
	if heap1 >= 64<<20 {
		r.note("WARNING: Go heap above the 64 MiB target")
	}
	return nil
}

// measurePutVsCopy alternates rounds of copy(src) into perRound slots of a
// destination touched beforehand, of CRC-32C over those slots, and of
// perRound puts (deleted again, untimed), for about a second in all, so that
// all see the same machine load. It returns the copy and CRC rates in GB/s,
// the puts made and their total time.
func measurePutVsCopy(ctx context.Context, b backend.Backend, src []byte, perRound int) (copyRate, crcRate float64, n int, putD time.Duration, err error) {
	size := len(src)
	dst := touched(size * perRound)
	ids := make([]backend.ID, perRound)
	for i := range ids {
		ids[i] = backend.ID(fmt.Sprintf("put-%d-%d", size, i))
	}
	var copyD, crcD time.Duration
	for round := 0; round < 3 || copyD+putD < time.Second; round++ {
		start := time.Now()
		for k := range perRound {
			copy(dst[k*size:(k+1)*size], src)
		}
		copyD += time.Since(start)
		start = time.Now()
		for k := range perRound {
			backend.Checksum(dst[k*size : (k+1)*size])
		}
		crcD += time.Since(start)
		start = time.Now()
		for _, id := range ids {
			if _, err := b.Put(ctx, id, src, backend.PutOptions{}); err != nil {
				return 0, 0, 0, 0, err
			}
		}
		putD += time.Since(start)
		n += perRound
		for _, id := range ids {
			if err := b.Delete(ctx, id); err != nil {
				return 0, 0, 0, 0, err
			}
		}
	}
	bytes := int64(n) * int64(size)
	return gbps(bytes, copyD), gbps(bytes, crcD), n, putD, nil
}

// measureGet returns the mean and the 99th percentile of Get+Bytes+Close of one object.
func measureGet(ctx context.Context, b backend.Backend, src []byte) (avg, p99 time.Duration, err error) {
	id := backend.ID(fmt.Sprintf("get-%d", len(src)))
	if _, err := b.Put(ctx, id, src, backend.PutOptions{}); err != nil {
		return 0, 0, err
	}
	defer b.Delete(ctx, id)
	get := func() error {
		obj, err := b.Get(ctx, id)
		if err != nil {
			return err
		}
		if len(obj.Bytes()) != len(src) {
			return fmt.Errorf("get returned %d bytes, want %d", len(obj.Bytes()), len(src))
		}
		return obj.Close()
	}
	const n = 200000
	start := time.Now()
	for range n {
		if err := get(); err != nil {
			return 0, 0, err
		}
	}
	avg = time.Since(start) / n
	samples := make([]time.Duration, 20000)
	for i := range samples {
		t := time.Now()
		if err := get(); err != nil {
			return 0, 0, err
		}
		samples[i] = time.Since(t)
	}
	slices.Sort(samples)
	return avg, samples[len(samples)*99/100], nil
}

// measurePGD returns put+get+delete triples per second on one goroutine, and
// the process CPU time per triple in ns: the best of three rounds of half a
// second each, so that a burst of load from elsewhere on a shared machine
// does not decide the figure.
func measurePGD(ctx context.Context, b backend.Backend, size int) (float64, float64, error) {
	src := make([]byte, size)
	ids := make([]backend.ID, 4096)
	for i := range ids {
		ids[i] = backend.ID(fmt.Sprintf("pgd-%d", i))
	}
	bestRate, bestCPU := 0.0, 0.0
	for range 3 {
		n := 0
		cpu0 := cpuTime()
		start := time.Now()
		for time.Since(start) < time.Second/2 {
			for _, id := range ids {
				if _, err := b.Put(ctx, id, src, backend.PutOptions{}); err != nil {
					return 0, 0, err
				}
				obj, err := b.Get(ctx, id)
				if err != nil {
					return 0, 0, err
				}
				obj.Close()
				if err := b.Delete(ctx, id); err != nil {
					return 0, 0, err
				}
			}
			n += len(ids)
		}
		wall, cpu := time.Since(start), cpuTime()-cpu0
		if rate := float64(n) / wall.Seconds(); rate > bestRate {
			bestRate, bestCPU = rate, float64(cpu.Nanoseconds())/float64(n)
		}
	}
	return bestRate, bestCPU, nil
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the 1-minute load average and the CPU count, to read
// figures taken on a shared machine.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%s on %d CPUs", f[0], runtime.NumCPU())
}

// heapInUse returns the Go heap in use after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
