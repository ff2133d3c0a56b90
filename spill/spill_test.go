package spill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
	_ "distore/disk"
	_ "distore/shmem"
)

// tierCfg is the config of a memory,disk stack for tests: memCap bytes of
// memory, diskCap bytes of disk (0: the disk tier's default), in dir.
func tierCfg(memCap, diskCap int64, dir string) map[string]backend.Config {
	disk := backend.Config{"dir": dir, "sync": "false", "gc_interval": "1h"}
	if diskCap > 0 {
		disk["capacity"] = fmt.Sprint(diskCap)
	}
	return map[string]backend.Config{
		"memory": {"capacity": fmt.Sprint(memCap)},
		"disk":   disk,
	}
}

// newStack opens a memory,disk stack torn down at the end of the test.
func newStack(t testing.TB, memCap, diskCap int64, opts Options) *Stack {
	t.Helper()
	tiers, err := ParseTiers("memory,disk", tierCfg(memCap, diskCap, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	opts.Tiers = tiers
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Teardown(context.Background()) })
	return s
}

// payload returns n deterministic bytes for seed.
func payload(n int, seed uint64) []byte { return backendtest.Payload(int64(n), seed) }

// tierOf returns the name of the tier the stack has id in.
func tierOf(t testing.TB, s *Stack, id backend.ID) string {
	t.Helper()
	info, err := s.ObjectInfo(context.Background(), id)
	if err != nil {
		t.Fatalf("ObjectInfo(%s): %v", id, err)
	}
	return info.Tier
}

// copies counts the tiers that hold id.
func copies(t testing.TB, s *Stack, id backend.ID) int {
	t.Helper()
	n := 0
	for _, b := range s.Tiers() {
		if _, err := b.ObjectInfo(context.Background(), id); err == nil {
			n++
		} else if !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("tier ObjectInfo(%s): %v", id, err)
		}
	}
	return n
}

func checkBytes(t testing.TB, s *Stack, id backend.ID, want []byte) {
	t.Helper()
	obj, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	defer obj.Close()
	if !bytes.Equal(obj.Bytes(), want) {
		t.Fatalf("Get(%s): %d bytes differ from the %d put", id, len(obj.Bytes()), len(want))
	}
}

func settle(t testing.TB, s *Stack) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

// stackFactory makes memory,disk stacks of capacity bytes per tier.
var stackFactory = backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
	tiers, err := ParseTiers("memory,disk", tierCfg(capacity, capacity, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Options{Tiers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	return s
}}

func TestConformance(t *testing.T) { backendtest.Run(t, stackFactory) }

// BenchmarkStack runs the standard backend benchmarks on a memory,disk stack
// (objects fit the memory tier: this measures the stack's own overhead; the
// bench suite "stack" measures spilling).
func BenchmarkStack(b *testing.B) { backendtest.Bench(b, stackFactory) }

func TestParseTiers(t *testing.T) {
	specs, err := ParseTiers(" memory , disk", map[string]backend.Config{
		"memory": {"capacity": "1MiB", "high_watermark": "0.8", "low_watermark": "0.5"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || specs[0].Name != "memory" || specs[1].Name != "disk" ||
		specs[0].HighWatermark != 0.8 || specs[0].LowWatermark != 0.5 || len(specs[0].Config) != 1 {
		t.Fatalf("specs = %+v", specs)
	}
	for _, bad := range []string{"", "memory,,disk", "memory,memory", "memory,nosuchtier"} {
		if _, err := ParseTiers(bad, nil); err == nil {
			t.Errorf("ParseTiers(%q) accepted", bad)
		}
	}
	if _, err := ParseTiers("memory", map[string]backend.Config{"disk": {}}); err == nil {
		t.Error("config for a tier not in the list accepted")
	}
	if _, err := ParseTiers("memory", map[string]backend.Config{"memory": {"high_watermark": "x"}}); err == nil {
		t.Error("bad watermark accepted")
	}
	_, err = Open(context.Background(), Options{Tiers: []TierSpec{{Name: "memory", Config: backend.Config{"capacity": "1MiB"}, HighWatermark: 0.5, LowWatermark: 0.6}}})
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("low above high: %v", err)
	}
}

// TestSpillKeepsImportant fills a memory,disk stack with three times the
// memory tier's capacity: everything reads back, the objects left in memory
// are the most important ones, and pinned objects never leave memory.
func TestSpillKeepsImportant(t *testing.T) {
	const memCap, size = 8 << 20, 128 << 10
	s := newStack(t, memCap, 0, Options{})
	ctx := context.Background()

	// Pinned objects of the lowest importance: the first victims, were they
	// not pinned.
	var pinned []backend.ID
	for i := range 4 {
		id := backend.ID(fmt.Sprintf("pinned-%d", i))
		if _, err := s.Put(ctx, id, payload(size, uint64(1000+i)), backend.PutOptions{Importance: -1}); err != nil {
			t.Fatal(err)
		}
		if err := s.Pin(ctx, id); err != nil {
			t.Fatal(err)
		}
		pinned = append(pinned, id)
	}
	n := 3 * memCap / size
	imp := make([]int, n)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				imp[i] = (i*7 + w) % 10
				id := backend.ID(fmt.Sprintf("obj-%03d", i))
				if _, err := s.Put(ctx, id, payload(size, uint64(i)), backend.PutOptions{Importance: imp[i]}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	settle(t, s)

	minMem, maxDisk, memBytes := 1<<30, -1<<30, int64(0)
	for i := range n {
		id := backend.ID(fmt.Sprintf("obj-%03d", i))
		checkBytes(t, s, id, payload(size, uint64(i)))
		if c := copies(t, s, id); c != 1 {
			t.Fatalf("%s is in %d tiers", id, c)
		}
		switch tier := tierOf(t, s, id); tier {
		case "memory":
			minMem = min(minMem, imp[i])
			memBytes += size
		case "disk":
			maxDisk = max(maxDisk, imp[i])
		default:
			t.Fatalf("%s in tier %q", id, tier)
		}
	}
	t.Logf("memory: %d objects, least important %d; most important on disk %d; metrics %+v",
		memBytes/size, minMem, maxDisk, s.Metrics())
	if minMem < maxDisk {
		t.Errorf("an object of importance %d stayed in memory while one of importance %d went to disk", minMem, maxDisk)
	}
	if memBytes < memCap/2 {
		t.Errorf("only %d bytes of objects left in a %d-byte memory tier", memBytes, memCap)
	}
	for i, id := range pinned {
		if tier := tierOf(t, s, id); tier != "memory" {
			t.Errorf("pinned %s is in %s", id, tier)
		}
		if c := copies(t, s, id); c != 1 {
			t.Errorf("pinned %s has %d copies", id, c)
		}
		checkBytes(t, s, id, payload(size, uint64(1000+i)))
	}
	m := s.Metrics()
	if m.SpilledObjects == 0 || m.MovesInFlight != 0 || m.Tiers[0].PinnedObjects != 4 {
		t.Errorf("metrics %+v", m)
	}
	if m.Tiers[0].Used > memCap {
		t.Errorf("memory tier holds %d bytes, capacity %d", m.Tiers[0].Used, memCap)
	}
}

// TestReadWhileSpilling reads objects, through Get and OpenReader, while the
// mover spills them, and keeps Objects open across their spill.
func TestReadWhileSpilling(t *testing.T) {
	const memCap, size, n = 4 << 20, 96 << 10, 120
	s := newStack(t, memCap, 0, Options{MaxConcurrentMoves: 3})
	ctx := context.Background()
	var written atomic.Int64
	var held []backend.Object
	var heldMu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := written.Load()
				if w == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				i := rng.Int64N(w)
				id := backend.ID(fmt.Sprintf("r-%03d", i))
				want := payload(size, uint64(i))
				if rng.IntN(2) == 0 {
					obj, err := s.Get(ctx, id)
					if err != nil {
						t.Errorf("Get(%s) during spills: %v", id, err)
						return
					}
					if !bytes.Equal(obj.Bytes(), want) {
						t.Errorf("Get(%s) during spills: bytes differ", id)
					}
					if rng.IntN(8) == 0 {
						heldMu.Lock()
						held = append(held, obj)
						heldMu.Unlock()
					} else {
						obj.Close()
					}
				} else {
					off := rng.Int64N(size)
					rd, err := s.OpenReader(ctx, id, off, -1)
					if err != nil {
						t.Errorf("OpenReader(%s) during spills: %v", id, err)
						return
					}
					got, err := io.ReadAll(rd)
					rd.Close()
					if err != nil || !bytes.Equal(got, want[off:]) {
						t.Errorf("OpenReader(%s, %d) during spills: %v, equal %v", id, off, err, bytes.Equal(got, want[off:]))
					}
				}
				reads.Add(1)
			}
		}()
	}
	for i := range n {
		id := backend.ID(fmt.Sprintf("r-%03d", i))
		if _, err := s.Put(ctx, id, payload(size, uint64(i)), backend.PutOptions{Importance: i % 3}); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
	}
	settle(t, s)
	close(stop)
	wg.Wait()
	m := s.Metrics()
	t.Logf("%d reads, %d objects held open; metrics %+v", reads.Load(), len(held), m)
	if m.SpilledObjects < n/4 { // the rest went straight to disk (admission floor)
		t.Errorf("only %d objects spilled", m.SpilledObjects)
	}
	for _, obj := range held {
		i := 0
		fmt.Sscanf(string(obj.Info().ID), "r-%d", &i)
		if !bytes.Equal(obj.Bytes(), payload(size, uint64(i))) {
			t.Errorf("held Object %s changed after its spill", obj.Info().ID)
		}
		obj.Close()
	}
}

// TestPinnedFull fills the memory tier with pinned objects: a Put that fits
// nowhere fails at once with an ErrFull that names the pinned bytes, within
// its deadline, and the stack keeps serving.
func TestPinnedFull(t *testing.T) {
	const memCap, size = 2 << 20, 256 << 10
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		diskCap int64
	}{{"memory", 0}, {"memory,disk", 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tierCfg(memCap, tc.diskCap, t.TempDir())
			if tc.name == "memory" {
				delete(cfg, "disk")
			}
			specs, err := ParseTiers(tc.name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(ctx, Options{Tiers: specs})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Teardown(ctx)
			var pins []backend.ID
			for i := 0; ; i++ {
				id := backend.ID(fmt.Sprintf("p-%d", i))
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := s.Put(pctx, id, payload(size, uint64(i)), backend.PutOptions{})
				cancel()
				if err != nil {
					if !errors.Is(err, backend.ErrFull) {
						t.Fatalf("filling: %v", err)
					}
					break
				}
				if tierOf(t, s, id) == "memory" {
					if err := s.Pin(ctx, id); err != nil {
						t.Fatal(err)
					}
					pins = append(pins, id)
				}
				if i > 64 {
					t.Fatal("no ErrFull after 64 puts")
				}
			}
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			start := time.Now()
			_, err = s.Put(pctx, "one-more", payload(size, 99), backend.PutOptions{Importance: 100})
			took := time.Since(start)
			var fe *backend.FullError
			if !errors.Is(err, backend.ErrFull) || !errors.As(err, &fe) {
				t.Fatalf("Put into a full stack = %v, want a *backend.FullError", err)
			}
			if took > 3*time.Second+500*time.Millisecond {
				t.Errorf("ErrFull took %v, past the 3s deadline", took)
			}
			pinnedBytes := int64(len(pins)) * size
			if fe.Pinned < pinnedBytes || !strings.Contains(err.Error(), "pinned") {
				t.Errorf("ErrFull %q: Pinned = %d, want >= %d and the message to say so", err, fe.Pinned, pinnedBytes)
			}
			t.Logf("%d pinned, ErrFull after %v: %v", len(pins), took, err)
			// The stack keeps serving: reads, and a Put once a pin is gone.
			checkBytes(t, s, pins[0], payload(size, 0))
			if err := s.Unpin(ctx, pins[0]); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, pins[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(pctx, "one-more", payload(size, 99), backend.PutOptions{}); err != nil {
				st, _ := s.Tiers()[0].Stats(ctx)
				t.Fatalf("Put after making room: %v\n%+v\n%+v", err, s.Metrics(), st)
			}
			checkBytes(t, s, "one-more", payload(size, 99))
		})
	}
}

// TestPinnedGoBelow: when the memory tier is full of pinned objects, a Put
// goes straight to the disk tier instead of waiting.
func TestPinnedGoBelow(t *testing.T) {
	const memCap, size = 2 << 20, 256 << 10
	s := newStack(t, memCap, 0, Options{})
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		id := backend.ID(fmt.Sprintf("p-%d", i))
		if _, err := s.Put(ctx, id, payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Pin(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for i := range 4 {
		id := backend.ID(fmt.Sprintf("x-%d", i))
		if _, err := s.Put(pctx, id, payload(size, uint64(i)), backend.PutOptions{Importance: 5}); err != nil {
			t.Fatalf("Put with memory pinned full: %v", err)
		}
		if tier := tierOf(t, s, id); tier != "disk" {
			t.Errorf("%s went to %s", id, tier)
		}
	}
}

// TestPinRacesSpill pins objects while the mover spills them: a pinned object
// never moves down, it is pinned in the tier that holds it, and every object
// ends in exactly one tier.
func TestPinRacesSpill(t *testing.T) {
	const memCap, size, n = 2 << 20, 64 << 10, 150
	s := newStack(t, memCap, 0, Options{MaxConcurrentMoves: 4})
	ctx := context.Background()
	var written atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 7))
		for written.Load() < n {
			w := written.Load()
			if w == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			id := backend.ID(fmt.Sprintf("o-%03d", rng.Int64N(w)))
			if err := s.Pin(ctx, id); err != nil {
				t.Errorf("Pin(%s): %v", id, err)
				return
			}
			info, _ := s.ObjectInfo(ctx, id)
			for i, b := range s.Tiers() {
				if b.Level() == info.Level {
					if ti, err := b.ObjectInfo(ctx, id); err != nil || ti.Pins != 1 {
						t.Errorf("pinned %s in tier %d: tier info %+v, %v", id, i, ti, err)
					}
				}
			}
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			after, _ := s.ObjectInfo(ctx, id)
			if after.Tier != info.Tier {
				t.Errorf("pinned %s moved from %s to %s", id, info.Tier, after.Tier)
			}
			if err := s.Unpin(ctx, id); err != nil {
				t.Errorf("Unpin(%s): %v", id, err)
				return
			}
		}
	}()
	for i := range n {
		id := backend.ID(fmt.Sprintf("o-%03d", i))
		if _, err := s.Put(ctx, id, payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
	}
	wg.Wait()
	settle(t, s)
	for i := range n {
		id := backend.ID(fmt.Sprintf("o-%03d", i))
		if c := copies(t, s, id); c != 1 {
			t.Errorf("%s in %d tiers", id, c)
		}
		checkBytes(t, s, id, payload(size, uint64(i)))
	}
	st, err := s.Stats(ctx)
	if err != nil || st.PinnedObjects != 0 {
		t.Errorf("pins left in the tiers: %+v, %v", st, err)
	}
	t.Logf("metrics %+v", s.Metrics())
}

// TestDeleteRacesMove deletes objects while they are being spilled and
// promoted: a deleted object is gone from every tier (a move cannot bring it
// back), the others are in exactly one tier.
func TestDeleteRacesMove(t *testing.T) {
	const memCap, size, n = 2 << 20, 64 << 10, 150
	s := newStack(t, memCap, 0, Options{MaxConcurrentMoves: 4, PromoteOnGet: true})
	ctx := context.Background()
	deleted := map[backend.ID]bool{}
	var dmu sync.Mutex
	var written atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for written.Load() < n {
				wn := written.Load()
				if wn == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				id := backend.ID(fmt.Sprintf("d-%03d", rng.Int64N(wn)))
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				if rng.IntN(6) > 0 {
					if obj, err := s.Get(ctx, id); err == nil { // promotes what is on disk
						obj.Close()
					}
					continue
				}
				err := s.Delete(ctx, id)
				if err == nil {
					dmu.Lock()
					deleted[id] = true
					dmu.Unlock()
				} else if !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("Delete(%s): %v", id, err)
				}
			}
		}()
	}
	for i := range n {
		id := backend.ID(fmt.Sprintf("d-%03d", i))
		if _, err := s.Put(ctx, id, payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
	}
	wg.Wait()
	settle(t, s)
	if len(deleted) == 0 {
		t.Fatal("nothing deleted")
	}
	for i := range n {
		id := backend.ID(fmt.Sprintf("d-%03d", i))
		c := copies(t, s, id)
		if deleted[id] {
			if c != 0 {
				t.Errorf("deleted %s is back in %d tiers", id, c)
			}
			if _, err := s.Get(ctx, id); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get of deleted %s = %v", id, err)
			}
			continue
		}
		if c != 1 {
			t.Errorf("%s in %d tiers", id, c)
		}
		checkBytes(t, s, id, payload(size, uint64(i)))
	}
	st, _ := s.Stats(ctx)
	if st.Objects != int64(n-len(deleted)) {
		t.Errorf("Stats.Objects = %d, want %d", st.Objects, n-len(deleted))
	}
	t.Logf("%d deleted; metrics %+v", len(deleted), s.Metrics())
}

// TestPrefetch brings a spilled object back to memory, making room by
// spilling a less important one.
func TestPrefetch(t *testing.T) {
	const memCap, size = 2 << 20, 256 << 10
	s := newStack(t, memCap, 0, Options{})
	ctx := context.Background()
	for i := range 20 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("f-%02d", i)), payload(size, uint64(i)), backend.PutOptions{Importance: 1}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	var cold backend.ID
	for i := range 20 {
		if id := backend.ID(fmt.Sprintf("f-%02d", i)); tierOf(t, s, id) == "disk" {
			cold = id
			break
		}
	}
	if cold == "" {
		t.Fatal("nothing spilled")
	}
	if err := s.Pin(ctx, cold); err != nil { // a pinned object may still go up
		t.Fatal(err)
	}
	if err := s.Prefetch(ctx, cold); err != nil {
		t.Fatal(err)
	}
	if tier := tierOf(t, s, cold); tier != "memory" {
		t.Fatalf("after Prefetch %s is in %s", cold, tier)
	}
	if ti, err := s.Tiers()[0].ObjectInfo(ctx, cold); err != nil || ti.Pins != 1 {
		t.Fatalf("promoted pinned object not pinned in memory: %+v, %v", ti, err)
	}
	if err := s.Unpin(ctx, cold); err != nil {
		t.Fatal(err)
	}
	if c := copies(t, s, cold); c != 1 {
		t.Fatalf("%s in %d tiers after Prefetch", cold, c)
	}
	var i int
	fmt.Sscanf(string(cold), "f-%d", &i)
	checkBytes(t, s, cold, payload(size, uint64(i)))
	if m := s.Metrics(); m.PromotedObjects != 1 {
		t.Errorf("metrics %+v", m)
	}
}

// TestPromoteOnGet: with the option, a read from disk brings the object up.
func TestPromoteOnGet(t *testing.T) {
	const memCap, size = 2 << 20, 256 << 10
	s := newStack(t, memCap, 0, Options{PromoteOnGet: true})
	ctx := context.Background()
	for i := range 12 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("g-%02d", i)), payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	// Make room under the high watermark, then read a cold object.
	var cold backend.ID
	for i := range 12 {
		id := backend.ID(fmt.Sprintf("g-%02d", i))
		switch tierOf(t, s, id) {
		case "disk":
			cold = id
		case "memory":
			if err := s.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	obj, err := s.Get(ctx, cold)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Info().Tier != "disk" {
		t.Errorf("served from %s", obj.Info().Tier)
	}
	obj.Close()
	settle(t, s)
	if tier := tierOf(t, s, cold); tier != "memory" {
		t.Fatalf("after Get with PromoteOnGet %s is in %s", cold, tier)
	}
}

// TestDuplicates: NewStack resolves an object found in two tiers.
func TestDuplicates(t *testing.T) {
	ctx := context.Background()
	mem, err := backend.Open(ctx, "memory", backend.Config{"capacity": "4MiB"})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := backend.Open(ctx, "disk", backend.Config{"dir": t.TempDir(), "sync": "false"})
	if err != nil {
		t.Fatal(err)
	}
	same, a, b := payload(50000, 1), payload(1000, 2), payload(1000, 3)
	for _, p := range []struct {
		tier backend.Backend
		id   backend.ID
		data []byte
	}{{mem, "same", same}, {disk, "same", same}, {mem, "differ", a}, {disk, "differ", b}, {mem, "only", a}} {
		if _, err := p.tier.Put(ctx, p.id, p.data, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewStack(ctx, []backend.Backend{mem, disk}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Teardown(ctx)
	if c := copies(t, s, "same"); c != 1 || tierOf(t, s, "same") != "disk" {
		t.Errorf("same: %d copies, in %s; want 1 on disk", c, tierOf(t, s, "same"))
	}
	checkBytes(t, s, "same", same)
	// Two valid, different copies: both kept, the slower one used.
	if c := copies(t, s, "differ"); c != 2 || tierOf(t, s, "differ") != "disk" {
		t.Errorf("differ: %d copies, in %s", c, tierOf(t, s, "differ"))
	}
	checkBytes(t, s, "differ", b)
	if l, _ := s.List(ctx, backend.ListOptions{}); len(l) != 3 {
		t.Errorf("List = %v", l)
	}
	if m := s.Metrics(); m.DuplicatesResolved != 2 {
		t.Errorf("metrics %+v", m)
	}
}

// TestPromoteOnPin: with the option, pinning an object on disk brings it up,
// still pinned (in the memory tier too, after the move).
func TestPromoteOnPin(t *testing.T) {
	const memCap, size = 2 << 20, 256 << 10
	s := newStack(t, memCap, 0, Options{PromoteOnPin: true})
	ctx := context.Background()
	for i := range 12 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("q-%02d", i)), payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	var cold backend.ID
	for i := range 12 {
		id := backend.ID(fmt.Sprintf("q-%02d", i))
		switch tierOf(t, s, id) {
		case "disk":
			cold = id
		case "memory":
			if err := s.Delete(ctx, id); err != nil { // room under the high watermark
				t.Fatal(err)
			}
		}
	}
	if err := s.Pin(ctx, cold); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	if tier := tierOf(t, s, cold); tier != "memory" {
		t.Fatalf("after Pin with PromoteOnPin %s is in %s", cold, tier)
	}
	if ti, err := s.Tiers()[0].ObjectInfo(ctx, cold); err != nil || ti.Pins != 1 {
		t.Fatalf("promoted object not pinned in memory: %+v, %v", ti, err)
	}
	if c := copies(t, s, cold); c != 1 {
		t.Fatalf("%s in %d tiers", cold, c)
	}
	if err := s.Delete(ctx, cold); !errors.Is(err, backend.ErrPinned) {
		t.Fatalf("Delete of the pinned, promoted object = %v", err)
	}
	if err := s.Unpin(ctx, cold); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Stats(ctx); st.PinnedObjects != 0 {
		t.Fatalf("tier pins left after Unpin: %+v", st)
	}
}

// TestMoveChurn moves objects up and down as fast as reads, prefetches and
// puts make it, with the windows between a move's steps widened: no object is
// lost, none is left in two tiers, and no move fails.
func TestMoveChurn(t *testing.T) {
	testHookCopied = func() { time.Sleep(200 * time.Microsecond) }
	testHookSwitched = func() { time.Sleep(500 * time.Microsecond) }
	t.Cleanup(func() { testHookCopied, testHookSwitched = nil, nil })
	const memCap, size, n = 1 << 20, 32 << 10, 100
	s := newStack(t, memCap, 0, Options{PromoteOnGet: true, MaxConcurrentMoves: 4})
	ctx := context.Background()
	var written atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for written.Load() < n {
				wn := written.Load()
				if wn == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				id := backend.ID(fmt.Sprintf("m-%03d", rng.Int64N(wn)))
				if w == 0 {
					if err := s.Prefetch(ctx, id); err != nil {
						t.Errorf("Prefetch(%s): %v", id, err)
						return
					}
				} else if obj, err := s.Get(ctx, id); err != nil {
					t.Errorf("Get(%s): %v", id, err)
					return
				} else {
					obj.Close()
				}
			}
		}()
	}
	for i := range n {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("m-%03d", i)), payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		written.Store(int64(i + 1))
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	settle(t, s)
	for i := range n {
		id := backend.ID(fmt.Sprintf("m-%03d", i))
		if c := copies(t, s, id); c != 1 {
			t.Errorf("%s in %d tiers", id, c)
		}
		checkBytes(t, s, id, payload(size, uint64(i)))
	}
	m := s.Metrics()
	t.Logf("metrics %+v", m)
	if m.MovesFailed != 0 || m.PromotedObjects == 0 || m.SpilledObjects == 0 {
		t.Errorf("moves failed %d, promoted %d, spilled %d", m.MovesFailed, m.PromotedObjects, m.SpilledObjects)
	}
}

// TestStreamedMove spills and promotes objects above wholeCopyMax, which
// moves stream (OpenReader → OpenWriter).
func TestStreamedMove(t *testing.T) {
	const size = wholeCopyMax + 12345
	s := newStack(t, 3*size, 0, Options{})
	ctx := context.Background()
	for i := range 4 {
		if _, err := s.Put(ctx, backend.ID(fmt.Sprintf("big-%d", i)), payload(size, uint64(i)), backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	if tierOf(t, s, "big-0") != "disk" {
		t.Fatalf("big-0 in %s, want disk", tierOf(t, s, "big-0"))
	}
	if err := s.Prefetch(ctx, "big-0"); err != nil {
		t.Fatal(err)
	}
	if tierOf(t, s, "big-0") != "memory" {
		t.Fatalf("big-0 in %s after Prefetch", tierOf(t, s, "big-0"))
	}
	settle(t, s)
	for i := range 4 {
		id := backend.ID(fmt.Sprintf("big-%d", i))
		if c := copies(t, s, id); c != 1 {
			t.Errorf("%s in %d tiers", id, c)
		}
		checkBytes(t, s, id, payload(size, uint64(i)))
	}
	if m := s.Metrics(); m.SpilledObjects < 2 || m.PromotedObjects != 1 || m.MovesFailed != 0 {
		t.Errorf("metrics %+v", m)
	}
}

// TestLargerThanMemory: an object larger than the memory tier goes straight to
// disk, without spilling anything; one larger than every tier is ErrTooLarge.
func TestLargerThanMemory(t *testing.T) {
	const memCap = 1 << 20
	s := newStack(t, memCap, 8<<20, Options{})
	ctx := context.Background()
	if _, err := s.Put(ctx, "small", payload(1000, 1), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	big := payload(memCap+1, 2)
	if _, err := s.Put(ctx, "big", big, backend.PutOptions{Importance: 100}); err != nil {
		t.Fatal(err)
	}
	if tierOf(t, s, "big") != "disk" || tierOf(t, s, "small") != "memory" {
		t.Errorf("big in %s, small in %s", tierOf(t, s, "big"), tierOf(t, s, "small"))
	}
	checkBytes(t, s, "big", big)
	_, err := s.Put(ctx, "huge", make([]byte, 9<<20), backend.PutOptions{})
	var fe *backend.FullError
	if !errors.Is(err, backend.ErrTooLarge) || !errors.As(err, &fe) || fe.Capacity != 8<<20 {
		t.Errorf("Put larger than every tier = %v", err)
	}
	if m := s.Metrics(); m.SpilledObjects != 0 || m.PutsBelow != 0 {
		t.Errorf("metrics %+v", m)
	}
}
