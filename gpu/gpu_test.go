package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/levels"
)

// simConfig is a tier small enough for the tests: 1 MiB chunks in 4 lanes, so
// a few-MiB object already goes through the pipeline in many chunks, and a
// 2 MiB Get cache, so large Gets take the pin-their-own-buffer path.
func simConfig(capacity int64) backend.Config {
	return backend.Config{KeyCapacity: fmt.Sprint(capacity), KeyStaging: "8MiB", KeyChunk: "1MiB", KeyHostCache: "2MiB"}
}

// openSim returns a set-up tier over a simulated device; at cleanup it checks
// that the tier gave back every allocation, stream and the context.
func openSim(t testing.TB, capacity int64) (*Tier, *simDevice) {
	t.Helper()
	tier, dev, err := newSimTier(simConfig(capacity), capacity+64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = tier.Teardown(context.Background())
		if l := dev.leaks(); l != "[]" {
			t.Errorf("after Teardown the tier still holds %s", l)
		}
	})
	return tier, dev
}

// TestConformanceSim runs the conformance suite on the tier's own logic over
// a simulated device (see simDevice); TestConformance runs it on a real GPU.
func TestConformanceSim(t *testing.T) {
	// Through the wrapper, as backend.New hands the tier out: the ID,
	// context and lifecycle checks are the wrapper's, not the tier's.
	backendtest.Run(t, backendtest.Factory{Make: func(t testing.TB, capacity int64) backend.Backend {
		tier, dev, err := newSimTier(simConfig(capacity), capacity+64<<20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if l := dev.leaks(); l != "[]" {
				t.Errorf("after Teardown the tier still holds %s", l)
			}
		})
		return backend.Wrap(Name, tier)
	}})
}

// realTier sets up the tier on GPU 0, or skips the test with the reason.
func realTier(t testing.TB, cfg backend.Config) *Tier {
	t.Helper()
	tier, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.Setup(context.Background()); err != nil {
		if errors.Is(err, backend.ErrUnavailable) {
			t.Skipf("no CUDA driver: %v", err)
		}
		t.Fatal(err)
	}
	return tier
}

func TestConformance(t *testing.T) {
	realTier(t, backend.Config{KeyCapacity: "1MiB"}).Teardown(context.Background())
	backendtest.Run(t, backendtest.Factory{Make: func(t testing.TB, capacity int64) backend.Backend {
		tier, err := New(backend.Config{KeyCapacity: fmt.Sprint(capacity), KeyHostCache: "128MiB"})
		if err != nil {
			t.Fatal(err)
		}
		return backend.Wrap(Name, tier) // as backend.New hands it out
	}})
}

func BenchmarkTier(b *testing.B) {
	realTier(b, backend.Config{KeyCapacity: "1MiB"}).Teardown(context.Background())
	backendtest.Bench(b, backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
		return realTier(t, backend.Config{KeyCapacity: fmt.Sprint(capacity)})
	}})
}

func TestSetupWithoutDevice(t *testing.T) {
	ctx := context.Background()
	b, err := backend.New(Name, nil)
	if err != nil {
		t.Fatalf("the factory must not need a GPU: %v", err)
	}
	if b.Level() != levels.GPU {
		t.Fatalf("Level = %v", b.Level())
	}
	err = b.Setup(ctx)
	if err == nil {
		b.Teardown(ctx)
		t.Skip("a CUDA device is present: nothing to check")
	}
	if !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Setup without a GPU = %v, want ErrUnavailable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "libcuda") && !strings.Contains(msg, "no CUDA device") {
		t.Fatalf("Setup error %q says neither that libcuda is missing nor that there is no device", msg)
	}
	if !strings.HasPrefix(msg, Name+": setup") {
		t.Errorf("Setup error %q does not name the tier", msg)
	}
	if _, libErr := loadLib(); libErr != nil && strings.Contains(libErr.Error(), "not found") &&
		!strings.Contains(msg, "libcuda.so.1 not found") && !strings.Contains(msg, LibraryEnv) {
		t.Errorf("Setup error %q does not say libcuda.so.1 was not found", msg)
	}
	t.Logf("Setup without a GPU: %v", err)
	// Nothing else works, and nothing panics.
	_, err = b.Put(ctx, "x", []byte("x"), backend.PutOptions{})
	if !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Put on a tier whose Setup failed = %v, want ErrClosed", err)
	}
	if _, err := b.Stats(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Stats = %v, want ErrClosed", err)
	}
	if err := b.Teardown(ctx); err != nil {
		t.Errorf("Teardown after a failed Setup: %v", err)
	}
	// OpenDriver says the same, again and again (the load is attempted once).
	for range 2 {
		if _, derr := OpenDriver(0); !errors.Is(derr, backend.ErrUnavailable) {
			t.Fatalf("OpenDriver = %v, want ErrUnavailable", derr)
		}
	}
}

func TestDeviceOrdinalOutOfRange(t *testing.T) {
	tier, dev, err := newSimTier(backend.Config{KeyDevice: "3"}, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	err = tier.Setup(context.Background())
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "ordinal 3 out of range") {
		t.Fatalf("Setup on device 3 = %v", err)
	}
	if dev.leaks() != "[the context (Close not called)]" || dev.hostAllocs.Load() != 0 {
		t.Fatalf("failed Setup took resources: %s", dev.leaks())
	}
	// On real hardware the same check comes from OpenDriver.
	if _, err := OpenDriver(1 << 20); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("OpenDriver(huge ordinal) = %v", err)
	}
}

func TestSetupCapacity(t *testing.T) {
	ctx := context.Background()
	// A fraction of free memory.
	tier, dev, err := newSimTier(backend.Config{KeyCapacity: "25%", KeyStaging: "2MiB", KeyChunk: "1MiB", KeyHostCache: "0"}, 400<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := tier.Stats(ctx)
	if st.Capacity != 100<<20 {
		t.Fatalf("capacity 25%% of 400 MiB = %d", st.Capacity)
	}
	di, err := tier.DeviceInfo(ctx)
	if err != nil || di.Total != 400<<20 || di.Free != 300<<20 || di.Name != "Simulated GPU" || di.Capacity != 100<<20 {
		t.Fatalf("DeviceInfo = %+v, %v", di, err)
	}
	if s := tier.String(); !strings.Contains(s, "Simulated GPU") || !strings.Contains(s, "100.0 MiB") {
		t.Fatalf("String = %q", s)
	}
	if err := tier.Setup(ctx); err == nil {
		t.Fatal("second Setup succeeded")
	}
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if l := dev.leaks(); l != "[]" {
		t.Fatalf("leaks after Teardown: %s", l)
	}
	if err := tier.Setup(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Setup after Teardown = %v", err)
	}

	// More than the device has: unavailable, and nothing kept.
	tier, dev, _ = newSimTier(backend.Config{KeyCapacity: "2GiB"}, 1<<30)
	err = tier.Setup(ctx)
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("Setup of 2 GiB on a 1 GiB device = %v", err)
	}
	if l := dev.leaks(); l != "[]" {
		t.Fatalf("failed Setup left %s", l)
	}
}

func TestConfig(t *testing.T) {
	good := []backend.Config{
		nil,
		{KeyCapacity: "0.5"}, {KeyCapacity: "1.0"}, {KeyCapacity: "50%"}, {KeyCapacity: "8GiB"}, {KeyCapacity: "1048576"},
		{KeyDevice: "1", KeyStaging: "256MiB", KeyChunk: "32MiB", KeyHostCache: "0"},
	}
	for _, cfg := range good {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%v): %v", cfg, err)
		}
	}
	bad := []backend.Config{
		{"capacty": "1GiB"}, {KeyCapacity: "1.5"}, {KeyCapacity: "0"}, {KeyCapacity: "0.0"}, {KeyCapacity: "150%"},
		{KeyCapacity: "lots"}, {KeyDevice: "-1"}, {KeyDevice: "gpu0"}, {KeyChunk: "4KiB"},
		{KeyStaging: "16MiB", KeyChunk: "16MiB"}, {KeyHostCache: "-1"},
	}
	for _, cfg := range bad {
		if _, err := New(cfg); !errors.Is(err, backend.ErrInvalidArgument) {
			t.Errorf("New(%v) = %v, want ErrInvalidArgument", cfg, err)
		}
	}
	// Every bad option in one error, not the first only.
	_, err := New(backend.Config{"capacty": "1GiB", KeyDevice: "-1", KeyChunk: "4KiB"})
	for _, want := range []string{`unknown option "capacty"`, "device ordinal -1", "option chunk: 4.0 KiB is below"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with three bad options = %v; does not say %q", err, want)
		}
	}
	c, _ := parseConfig(backend.Config{KeyCapacity: "0.25"})
	if got := c.capacity(1000); got != 250 {
		t.Errorf("capacity 0.25 of 1000 = %d", got)
	}
}

func TestChunkFor(t *testing.T) {
	tier, _ := openSim(t, 1<<20) // 4 lanes of 1 MiB chunks
	for _, c := range []struct{ n, want int64 }{{1, 1 << 20}, {4 << 20, 1 << 20}, {1 << 30, 1 << 20}} {
		if got := tier.chunkFor(c.n); got != c.want {
			t.Errorf("chunkFor(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	tier.chunk = 16 << 20
	for _, c := range []struct{ n, want int64 }{{64 << 20, 4 << 20}, {1 << 30, 16 << 20}, {20 << 20, 1<<20 + 256<<10}} {
		if got := tier.chunkFor(c.n); got != c.want {
			t.Errorf("chunkFor(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	tier.chunk = 1 << 20
}

// devBytes reads device memory of the simulated device.
func devBytes(t *testing.T, dev *simDevice, p uintptr, n int) []byte {
	t.Helper()
	dev.mu.Lock()
	defer dev.mu.Unlock()
	b, err := dev.devRange(p, n)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(b)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>12)
	}
	return b
}

func TestDevicePointerOutlivesDelete(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 8<<20)
	data := pattern(3<<20+5, 1)
	if _, err := tier.Put(ctx, "a", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := tier.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	do, ok := obj.(DeviceObject)
	if !ok {
		t.Fatalf("Get returned %T, not a DeviceObject", obj)
	}
	p, n := do.DevicePtr(), do.DeviceSize()
	if n != int64(len(data)) || p < tier.base || p+uintptr(n) > tier.base+uintptr(tier.arena.Capacity()) || p%deviceAlign != 0 {
		t.Fatalf("DevicePtr %#x size %d outside the tier's allocation at %#x", p, n, tier.base)
	}
	if !bytes.Equal(devBytes(t, dev, p, int(n)), data) {
		t.Fatal("device memory at DevicePtr differs from the object")
	}
	if err := tier.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	st, _ := tier.Stats(ctx)
	if st.Objects != 0 || st.Used < n {
		t.Fatalf("Stats after deleting an open object = %+v: its device range must still count", st)
	}
	// Fill the rest: nothing may land on the open object's range.
	for i := 0; ; i++ {
		_, err := tier.Put(ctx, backend.ID(fmt.Sprintf("f%d", i)), pattern(1<<20, byte(i)), backend.PutOptions{})
		if errors.Is(err, backend.ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(devBytes(t, dev, p, int(n)), data) {
		t.Fatal("a deleted but open object's device memory was reused")
	}
	obj.Close()
	if _, err := tier.Put(ctx, "b", pattern(3<<20, 9), backend.PutOptions{}); err != nil {
		t.Fatalf("Put into the range freed by Close: %v", err)
	}
}

func TestTransferFailures(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 16<<20)
	data := pattern(6<<20, 3)
	dev.failHtoD.Store(4) // the 4th chunk's DMA fails
	_, err := tier.Put(ctx, "bad", data, backend.PutOptions{})
	if !errors.Is(err, errSim) || !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), `gpu: put "bad"`) {
		t.Fatalf("Put with a failing DMA = %v", err)
	}
	if st, _ := tier.Stats(ctx); st.Used != 0 || st.Objects != 0 {
		t.Fatalf("failed Put left %+v", st)
	}
	if len(tier.lanes) != cap(tier.lanes) {
		t.Fatalf("failed Put kept %d lanes", cap(tier.lanes)-len(tier.lanes))
	}
	dev.failHtoD.Store(0)
	if _, err := tier.Put(ctx, "bad", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	dev.dtohN.Store(0)
	dev.failDtoH.Store(1)
	if _, err := tier.Get(ctx, "bad"); !errors.Is(err, errSim) {
		t.Fatalf("Get with a failing copy = %v", err)
	}
	// The failed Get released its reference: the object deletes and its
	// memory comes back.
	if err := tier.Delete(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if st, _ := tier.Stats(ctx); st.Used != 0 {
		t.Fatalf("after a failed Get and Delete, Used = %d", st.Used)
	}
}

func TestCancelledTransfer(t *testing.T) {
	tier, _ := openSim(t, 16<<20)
	ctx, cancel := context.WithCancel(context.Background())
	// Take every lane, so the Put waits for one, then cancel it.
	var held []*lane
	for range cap(tier.lanes) {
		held = append(held, <-tier.lanes)
	}
	done := make(chan error)
	go func() {
		_, err := tier.Put(ctx, "c", pattern(2<<20, 1), backend.PutOptions{})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put waiting for a lane, cancelled = %v", err)
	}
	for _, l := range held {
		tier.lanes <- l
	}
	if st, _ := tier.Stats(context.Background()); st.Used != 0 {
		t.Fatalf("cancelled Put left %d bytes used", st.Used)
	}
}

func TestHostCacheAndDedicatedBuffers(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 16<<20) // 2 MiB Get cache
	small, big := pattern(1<<20, 1), pattern(3<<20, 2)
	tier.Put(ctx, "small", small, backend.PutOptions{})
	tier.Put(ctx, "big", big, backend.PutOptions{})
	before := dev.hostAllocs.Load()
	o1, err := tier.Get(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if dev.hostAllocs.Load() != before {
		t.Fatal("a Get that fits the cache pinned a buffer of its own")
	}
	o2, err := tier.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if dev.hostAllocs.Load() != before+1 {
		t.Fatal("a Get larger than the cache did not pin its own buffer")
	}
	if !bytes.Equal(o1.Bytes(), small) || !bytes.Equal(o2.Bytes(), big) {
		t.Fatal("Get bytes differ")
	}
	o1.Close()
	o2.Close()
	dev.mu.Lock()
	pinned := len(dev.host)
	dev.mu.Unlock()
	if pinned != 2 { // staging and the cache
		t.Fatalf("%d pinned host buffers after closing the Gets, want 2", pinned)
	}
}

func TestTeardownWaitsForOpenHandles(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 16<<20)
	data := pattern(2<<20, 4)
	tier.Put(ctx, "x", data, backend.PutOptions{})
	obj, err := tier.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tier.OpenReader(ctx, "x", 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	w, err := tier.OpenWriter(ctx, "y", 10, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if dev.closed {
		t.Fatal("Teardown freed the device while a Get, a reader and a writer were open")
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data[1:]) {
		t.Fatalf("reader after Teardown: %d bytes, %v", len(got), err)
	}
	r.Close()
	w.Write(make([]byte, 10))
	if err := w.Close(); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("writer Close after Teardown = %v, want ErrClosed", err)
	}
	if !bytes.Equal(obj.Bytes(), data) || obj.(DeviceObject).DevicePtr() == 0 {
		t.Fatal("object changed after Teardown")
	}
	if l := dev.leaks(); l == "[]" {
		t.Fatal("resources freed before the last object closed")
	}
	obj.Close()
	if l := dev.leaks(); l != "[]" {
		t.Fatalf("after the last Close the tier still holds %s", l)
	}
}

// simExport finds the simulated allocation an IPC handle names (the sim's
// handle is "sim:" and the address in hex).
func simExport(t *testing.T, dev *simDevice, h IPCHandle) (uintptr, []byte) {
	t.Helper()
	var p uintptr
	if _, err := fmt.Sscanf(strings.TrimRight(string(h.Handle[:]), "\x00"), "sim:%x", &p); err != nil {
		t.Fatalf("handle %q: %v", h.Handle[:16], err)
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	m, ok := dev.mem[p]
	if !ok {
		t.Fatalf("handle names %#x, which is not a live allocation", p)
	}
	return p, bytes.Clone(m)
}

// TestExportIPC: an export shows one object and zeros, names the device by
// UUID, outlives the object and holds the tier's memory until Release.
func TestExportIPC(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 8<<20)
	a, b := pattern(1000, 1), pattern(5000, 2)
	tier.Put(ctx, "a", a, backend.PutOptions{})
	tier.Put(ctx, "b", b, backend.PutOptions{})
	x, err := tier.ExportIPC(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	h := x.Handle()
	if h.Size != int64(len(b)) || h.Checksum != backend.Checksum(b) || h.DeviceUUID != simUUID {
		t.Fatalf("handle: size %d checksum %08x device %q; want %d %08x %q", h.Size, h.Checksum, h.DeviceUUID,
			len(b), backend.Checksum(b), simUUID)
	}
	p, m := simExport(t, dev, h)
	if p == tier.base {
		t.Fatal("the handle exposes the tier's whole allocation")
	}
	if len(m) != ipcGranule {
		t.Fatalf("export allocation of %d bytes, want one %d-byte granule", len(m), ipcGranule)
	}
	if !bytes.Equal(m[:len(b)], b) {
		t.Fatal("the export's bytes differ from the object")
	}
	if i := slices.IndexFunc(m[len(b):], func(c byte) bool { return c != 0 }); i >= 0 {
		t.Fatalf("byte %d of the export, past the object, is %#x: the rest of the allocation must be zeros", len(b)+i, m[len(b)+i])
	}
	if di, _ := tier.DeviceInfo(ctx); di.UUID != simUUID || di.Exports != 1 || di.Exported != ipcGranule {
		t.Fatalf("DeviceInfo = %+v", di)
	}
	// The export outlives the object.
	if err := tier.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	tier.Put(ctx, "c", pattern(6<<20, 3), backend.PutOptions{})
	if _, m2 := simExport(t, dev, h); !bytes.Equal(m2, m) {
		t.Fatal("the export changed after its object was deleted and its range reused")
	}
	// An empty object exports one granule of zeros.
	tier.Put(ctx, "empty", nil, backend.PutOptions{})
	x0, err := tier.ExportIPC(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if _, m0 := simExport(t, dev, x0.Handle()); x0.Handle().Size != 0 || len(m0) != ipcGranule || slices.Max(m0) != 0 {
		t.Fatal("export of an empty object is not one granule of zeros")
	}
	if err := x0.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.ExportIPC(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("ExportIPC of a missing object = %v", err)
	}
	// Teardown waits for the export: another process may map it.
	if err := tier.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	dev.mu.Lock()
	_, live := dev.mem[p]
	closed := dev.closed
	dev.mu.Unlock()
	if !live || closed {
		t.Fatalf("Teardown freed an export not released (allocation live %v, context released %v)", live, closed)
	}
	if _, err := tier.ExportIPC(ctx, "a"); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("ExportIPC after Teardown = %v", err)
	}
	if err := x.Release(); err != nil {
		t.Fatal(err)
	}
	if l := dev.leaks(); l != "[]" {
		t.Fatalf("after the last export's Release the tier still holds %s", l)
	}
	if err := x.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}

// TestReadAtRacesClose reads an object while another goroutine closes it.
// The object is larger than the Get cache, so Close frees a pinned buffer of
// its own; the simulator makes freed pinned memory fault, and the fault is
// turned into a failure here: a ReadAt must finish before the free or fail
// with ErrClosed.
func TestReadAtRacesClose(t *testing.T) {
	ctx := context.Background()
	tier, _ := openSim(t, 16<<20) // 2 MiB Get cache
	data := pattern(3<<20, 5)
	if _, err := tier.Put(ctx, "x", data, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(data))
	for i := range 20 {
		obj, err := tier.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		var reads atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			debug.SetPanicOnFault(true)
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("round %d: ReadAt touched freed pinned memory: %v", i, r)
				}
			}()
			for {
				n, err := obj.ReadAt(buf, 0)
				if errors.Is(err, backend.ErrClosed) {
					return
				}
				if err != nil || n != len(data) || !bytes.Equal(buf, data) {
					t.Errorf("round %d: ReadAt = %d, %v (bytes equal %v)", i, n, err, bytes.Equal(buf, data))
					return
				}
				reads.Add(1)
			}
		})
		for reads.Load() == 0 {
			runtime.Gosched()
		}
		obj.Close()
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// TestConcurrentLargePuts shares the lanes between transfers: each must stay
// whole while others take lanes as they free up.
func TestConcurrentLargePuts(t *testing.T) {
	ctx := context.Background()
	tier, dev := openSim(t, 64<<20)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			id := backend.ID(fmt.Sprintf("p%d", i))
			data := pattern(5<<20+i*4097, byte(i))
			info, err := tier.Put(ctx, id, data, backend.PutOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			if info.Checksum != backend.Checksum(data) {
				t.Errorf("%s: checksum %08x, want %08x", id, info.Checksum, backend.Checksum(data))
			}
			obj, err := tier.Get(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			defer obj.Close()
			if !bytes.Equal(obj.Bytes(), data) || !bytes.Equal(devBytes(t, dev, obj.(DeviceObject).DevicePtr(), len(data)), data) {
				t.Errorf("%s: bytes differ", id)
			}
		})
	}
	wg.Wait()
}

func TestObjectAfterClose(t *testing.T) {
	ctx := context.Background()
	tier, _ := openSim(t, 8<<20)
	tier.Put(ctx, "a", pattern(100, 1), backend.PutOptions{})
	obj, err := tier.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	obj.Close()
	if _, err := obj.ReadAt(make([]byte, 1), 0); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("ReadAt after Close = %v", err)
	}
	if obj.Bytes() != nil {
		t.Fatal("Bytes after Close is not nil")
	}
	if err := obj.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
