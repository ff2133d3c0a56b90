package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"distore/backend"
	_ "distore/disk"
)

var (
	diskTotal = flag.String("disk.total", "2GiB", "disk suite: bytes written and read per object size and per way")
	diskDir   = flag.String("disk.dir", "", "disk suite: directory for its temporary files (default: the system's temp dir)")
	diskBig   = flag.String("disk.big", "4GiB", "disk suite: size of the object streamed to measure the writer's memory (0: skip)")
	diskSmall = flag.Duration("disk.small", 2*time.Second, "disk suite: how long each 4 KiB puts/s run lasts")
	diskSync  = flag.Bool("disk.sync", true, "disk suite: the tier's sync option (and plain Badger's SyncWrites)")
	diskReads = flag.Int("disk.reads", 3, "disk suite: cold reads per object size and way (the median is reported)")
)

func init() {
	register("disk", "Disk tier vs plain Badger and plain files: write, cold read, 4 KiB puts/s, writer memory", runDisk)
}

func runDisk(ctx context.Context, r *report) error {
	total, err := backend.ParseBytes(*diskTotal)
	if err != nil {
		return fmt.Errorf("-disk.total: %v", err)
	}
	big, err := backend.ParseBytes(*diskBig)
	if err != nil {
		return fmt.Errorf("-disk.big: %v", err)
	}
	root, err := os.MkdirTemp(*diskDir, "distore-bench-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	cold := "cold (page cache dropped)"
	if err := dropCaches(); err != nil {
		cold = fmt.Sprintf("NOT cold: cannot drop the page cache (%v); reads may come from memory", err)
	}
	r.note("dir %s, %s per size and way, sync=%v, reads %s", root, backend.FormatBytes(total), *diskSync, cold)

	src := make([]byte, 64<<20)
	_, _ = rand.Read(src)
	ways := []struct {
		name string
		run  func(ctx context.Context, dir string, size, n int64, src []byte) (w time.Duration, rd coldRead, err error)
	}{
		{"file", fileWay},
		{"badger", badgerWay},
		{"tier", tierWay},
	}
	r.table("object", "way", "write GB/s", "cold read GB/s", "tier write/x", "tier read/x", "read IOs", "KiB/IO")
	for _, size := range []int64{1 << 20, 64 << 20} {
		n := max(total/size, 1)
		bytes := n * size
		wr := map[string]float64{}
		rd := map[string]float64{}
		rc := map[string]coldRead{}
		for _, way := range ways {
			if err := ctx.Err(); err != nil {
				return err
			}
			dir := filepath.Join(root, way.name)
			w, rdur, err := way.run(ctx, dir, size, n, src)
			_ = os.RemoveAll(dir)
			if err != nil {
				return fmt.Errorf("%s %s: %w", way.name, sizeName(size), err)
			}
			wr[way.name], rd[way.name], rc[way.name] = gbps(bytes, w), gbps(bytes, rdur.d), rdur
		}
		for _, way := range ways {
			c := rc[way.name]
			r.row(sizeName(size), way.name, wr[way.name], rd[way.name],
				ratio(wr["tier"], wr[way.name]), ratio(rd["tier"], rd[way.name]), c.ios, c.kib/max(c.ios, 1))
		}
	}
	r.note("targets: tier write >= 0.9x badger and >= 0.6x file; tier cold read >= 0.6x file")
	r.note("cold read: the median of %d reads (-disk.reads), each after dropping the page cache; read IOs and KiB/IO are the device's", *diskReads)
	r.note("(/proc/diskstats, device-wide: other processes' reads count too) in that read: the same IOs for tier and file mean the same disk work")
	r.note("on a VM disk, data read just after it was written may come from the host's cache: cold reads vary between runs")
	r.note("badger: plain Badger v4, default options, SyncWrites=%v, one Update per 1 MiB value; file: one file per object, write (+ fsync if sync), read into a buffer; Badger and the tier are reopened before the cold read", *diskSync)

	src = nil
	if big > 0 {
		if err := writerMemory(ctx, r, root, big); err != nil {
			return err
		}
	}
	return smallPuts(ctx, r, root)
}

// dropCaches writes back dirty pages and drops the page cache (root only).
// Pages a process maps are not dropped, and Badger maps its value-log files
// (and reads the newest one through at open), so first unmap those pages from
// this process (madvise DONTNEED keeps the files' contents and mappings).
func dropCaches() error {
	syscall.Sync()
	unmapValueLogs()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0)
}

// unmapValueLogs drops this process's page-table entries for mapped Badger
// value-log files, so their pages become droppable page cache.
func unmapValueLogs() {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if !strings.HasSuffix(line, ".vlog") && !strings.HasSuffix(line, ".mem") {
			continue
		}
		lo, hi, ok := strings.Cut(strings.Fields(line)[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), syscall.MADV_DONTNEED)
		}
	}
}

// coldRead is the median of -disk.reads cold reads of one way: its time,
// and the reads the file system's device served meanwhile (from
// /proc/diskstats: device-wide, so other processes' reads count too).
type coldRead struct {
	d        time.Duration
	ios, kib int64 // reads completed and KiB read; -1 if unknown
}

// coldReads times read -disk.reads times, each after reopen (Badger and the
// tier: pages they map cannot be dropped) and dropping the page cache, and
// returns the median.
func coldReads(dir string, reopen func() error, read func() error) (coldRead, error) {
	var all []coldRead
	for range max(*diskReads, 1) {
		if reopen != nil {
			if err := reopen(); err != nil {
				return coldRead{}, err
			}
		}
		_ = dropCaches()
		ios0, sec0 := devReads(dir)
		start := time.Now()
		if err := read(); err != nil {
			return coldRead{}, err
		}
		c := coldRead{d: time.Since(start), ios: -1, kib: -1}
		if ios1, sec1 := devReads(dir); ios0 >= 0 && ios1 >= 0 {
			c.ios, c.kib = ios1-ios0, (sec1-sec0)/2
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b coldRead) int { return cmp.Compare(a.d, b.d) })
	return all[len(all)/2], nil
}

// devReads returns the reads completed and the sectors read by the device
// holding dir, from /proc/diskstats; -1, -1 if unknown.
func devReads(dir string) (ios, sectors int64) {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return -1, -1
	}
	major, minor := strconv.FormatUint(uint64(unix.Major(st.Dev)), 10), strconv.FormatUint(uint64(unix.Minor(st.Dev)), 10)
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return -1, -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 6 && f[0] == major && f[1] == minor {
			ios, err1 := strconv.ParseInt(f[3], 10, 64)
			sectors, err2 := strconv.ParseInt(f[5], 10, 64)
			if err1 == nil && err2 == nil {
				return ios, sectors
			}
		}
	}
	return -1, -1
}

func fileWay(ctx context.Context, dir string, size, n int64, src []byte) (time.Duration, coldRead, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, coldRead{}, err
	}
	name := func(i int64) string { return filepath.Join(dir, strconv.FormatInt(i, 10)) }
	start := time.Now()
	for i := range n {
		f, err := os.Create(name(i))
		if err != nil {
			return 0, coldRead{}, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		_, err = w.Write(src[:size])
		if err == nil {
			err = w.Flush()
		}
		if err == nil && *diskSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, coldRead{}, err
		}
	}
	write := time.Since(start)
	buf := make([]byte, size)
	read, err := coldReads(dir, nil, func() error {
		for i := range n {
			f, err := os.Open(name(i))
			if err != nil {
				return err
			}
			_, err = io.ReadFull(f, buf)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return write, read, err
}

func badgerWay(ctx context.Context, dir string, size, n int64, src []byte) (time.Duration, coldRead, error) {
	opts := badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(*diskSync)
	db, err := badger.Open(opts)
	if err != nil {
		return 0, coldRead{}, err
	}
	defer func() { db.Close() }()
	const value = 1 << 20
	parts := max(size/value, 1)
	key := func(i, j int64) []byte { return []byte(fmt.Sprintf("%08d/%06d", i, j)) }
	start := time.Now()
	for i := range n {
		for j := range parts {
			v := src[j*value : min((j+1)*value, size)]
			if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key(i, j), v) }); err != nil {
				return 0, coldRead{}, err
			}
		}
	}
	write := time.Since(start)
	buf := make([]byte, 0, value)
	read, err := coldReads(dir, func() error {
		if err := db.Close(); err != nil {
			return err
		}
		db, err = badger.Open(opts)
		return err
	}, func() error {
		for i := range n {
			for j := range parts {
				err := db.View(func(txn *badger.Txn) error {
					item, err := txn.Get(key(i, j))
					if err == nil {
						buf, err = item.ValueCopy(buf[:0])
					}
					return err
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	return write, read, err
}

func openTier(ctx context.Context, dir string) (backend.Backend, error) {
	return backend.Open(ctx, "disk", backend.Config{"dir": dir, "sync": strconv.FormatBool(*diskSync)})
}

func tierWay(ctx context.Context, dir string, size, n int64, src []byte) (time.Duration, coldRead, error) {
	b, err := openTier(ctx, dir)
	if err != nil {
		return 0, coldRead{}, err
	}
	defer func() { b.Teardown(context.Background()) }()
	id := func(i int64) backend.ID { return backend.ID(fmt.Sprintf("obj-%08d", i)) }
	start := time.Now()
	for i := range n {
		if _, err := b.Put(ctx, id(i), src[:size], backend.PutOptions{}); err != nil {
			return 0, coldRead{}, err
		}
	}
	write := time.Since(start)
	read, err := coldReads(dir, func() error {
		if err := b.Teardown(ctx); err != nil {
			return err
		}
		b, err = openTier(ctx, dir)
		return err
	}, func() error {
		for i := range n {
			obj, err := b.Get(ctx, id(i))
			if err != nil {
				return err
			}
			obj.Close()
		}
		return nil
	})
	return write, read, err
}

// smallPuts measures 4 KiB puts per second with concurrent writers, against
// plain Badger doing one Update per object with the same concurrency.
func smallPuts(ctx context.Context, r *report, root string) error {
	val := make([]byte, 4<<10)
	_, _ = rand.Read(val)
	run := func(workers int, put func(w, i int) error) (float64, error) {
		var count atomic.Int64
		var first error
		var once sync.Once
		deadline := time.Now().Add(*diskSmall)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
					if err := put(w, i); err != nil {
						once.Do(func() { first = err })
						return
					}
					count.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(count.Load()) / time.Since(start).Seconds(), first
	}
	r.table("4KiB puts", "sync", "writers", "tier puts/s", "badger puts/s", "tier/badger")
	for _, sync := range []bool{true, false} {
		for _, workers := range []int{1, 64, 256} {
			dir := filepath.Join(root, "small-tier")
			b, err := backend.Open(ctx, "disk", backend.Config{"dir": dir, "sync": strconv.FormatBool(sync)})
			if err != nil {
				return err
			}
			tierRate, err := run(workers, func(w, i int) error {
				_, err := b.Put(ctx, backend.ID(fmt.Sprintf("s-%d-%d", w, i)), val, backend.PutOptions{})
				return err
			})
			_ = b.Teardown(context.Background())
			_ = os.RemoveAll(dir)
			if err != nil {
				return err
			}
			dir = filepath.Join(root, "small-badger")
			db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithSyncWrites(sync))
			if err != nil {
				return err
			}
			badgerRate, err := run(workers, func(w, i int) error {
				return db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(fmt.Sprintf("s-%d-%d", w, i)), val) })
			})
			_ = db.Close()
			_ = os.RemoveAll(dir)
			if err != nil {
				return err
			}
			r.row("4KiB", sync, workers, tierRate, badgerRate, ratio(tierRate, badgerRate))
		}
	}
	r.note("target: >= 50000 tier puts/s")
	return nil
}

// procStatus returns a field of /proc/self/status in bytes.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// writerMemory streams objects of growing size through OpenWriter and
// reports the process's peak memory while each is written: peak anonymous
// RSS (sampled) and VmHWM (reset before each run where the kernel allows).
func writerMemory(ctx context.Context, r *report, root string, big int64) error {
	dir := filepath.Join(root, "rss")
	defer os.RemoveAll(dir)
	b, err := openTier(ctx, dir)
	if err != nil {
		return err
	}
	defer b.Teardown(context.Background())
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	r.table("streamed object", "write GB/s", "RssAnon before", "peak RssAnon", "peak live heap", "VmHWM", "VmHWM-start", "RssFile at end")
	for _, size := range []int64{min(256<<20, big), big} {
		debug.FreeOSMemory() // so RssAnon starts from what is live
		runtime.GC()
		resetHWM := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		hwm0, anon0 := procStatus("VmHWM"), procStatus("RssAnon")
		var peakAnon, peakHeap atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			// RssAnon every 20 ms; the live heap (after a GC) every 100 ms:
			// garbage depends on GC pacing, not on the object.
			var ms runtime.MemStats
			for i := 0; ; i++ {
				if a := procStatus("RssAnon"); a > peakAnon.Load() {
					peakAnon.Store(a)
				}
				if i%5 == 0 {
					runtime.GC()
					runtime.ReadMemStats(&ms)
					if h := int64(ms.HeapAlloc); h > peakHeap.Load() {
						peakHeap.Store(h)
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		id := backend.ID(fmt.Sprintf("stream-%d", size))
		start := time.Now()
		w, err := b.OpenWriter(ctx, id, size, backend.PutOptions{})
		if err == nil {
			for off := int64(0); off < size && err == nil; off += int64(len(buf)) {
				_, err = w.Write(buf[:min(int64(len(buf)), size-off)])
			}
			if err == nil {
				err = w.Close()
			} else {
				_ = w.Abort()
			}
		}
		took := time.Since(start)
		close(stop)
		wg.Wait()
		if err != nil {
			return fmt.Errorf("streaming %s: %w", sizeName(size), err)
		}
		hwm := procStatus("VmHWM")
		hwmNote := backend.FormatBytes(hwm)
		if !resetHWM {
			hwmNote += " (not reset)"
		}
		r.row(sizeName(size), gbps(size, took), backend.FormatBytes(anon0), backend.FormatBytes(peakAnon.Load()), backend.FormatBytes(peakHeap.Load()),
			hwmNote, backend.FormatBytes(hwm-hwm0), backend.FormatBytes(procStatus("RssFile")))
	}
	r.note("RssAnon and the live heap are the process's own memory; VmHWM also counts the value-log pages Badger maps (RssFile): page cache the kernel reclaims, as it would for write()")
	return nil
}
