package disk

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// TestWriterMemoryIsConstant streams objects of 16 MiB and 256 MiB through
// OpenWriter and checks that the Go heap's peak does not grow with the
// object (the bench does the same with a 4 GiB object and reports RSS).
func TestWriterMemoryIsConstant(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 256 MiB")
	}
	tier := open(t, backend.Config{"sync": "false"})
	ctx := context.Background()
	buf := backendtest.Payload(1<<20, 5)
	peak := func(size int64) int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := int64(ms.HeapAlloc)
		var top atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			// The live heap: garbage (Badger allocates a value-log buffer per
			// write batch) depends on GC pacing, not on the object.
			var ms runtime.MemStats
			for {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				if h := int64(ms.HeapAlloc); h > top.Load() {
					top.Store(h)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
		id := backend.ID("stream")
		w, err := tier.OpenWriter(ctx, id, size, backend.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if err := tier.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		return top.Load() - base
	}
	small := peak(16 << 20)
	large := peak(256 << 20)
	t.Logf("peak live Go heap growth while streaming: 16 MiB object %s, 256 MiB object %s",
		backend.FormatBytes(small), backend.FormatBytes(large))
	if large > small+32<<20 || large > 96<<20 {
		t.Fatalf("heap grows with the streamed object: %d bytes for 16 MiB, %d for 256 MiB", small, large)
	}
}
