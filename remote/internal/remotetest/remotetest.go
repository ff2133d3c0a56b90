// Package remotetest holds helpers that the tests of the Remote tiers
// (remote/s3 and remote/ceph) share.
package remotetest

import (
	"context"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"distore/backend"
)

// PeakHeap samples the Go heap in use while f runs and returns its peak
// above the heap before f.
func PeakHeap(f func()) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}

// Patterned is an endless reader of a byte pattern, for big streams in
// constant memory. Its zero value starts at offset 0.
type Patterned struct{ off int64 }

// Read fills b with the pattern's next len(b) bytes.
func (p *Patterned) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.off*7 + p.off>>12)
		p.off++
	}
	return len(b), nil
}

// StreamConstantMemory streams a size-byte object through tier's OpenWriter
// and back through OpenReader, and fails if the Go heap grew by more than
// limit meanwhile: a streamed object must cost the chunks in flight, not its
// size.
func StreamConstantMemory(t *testing.T, tier backend.Backend, size, limit int64) {
	ctx := context.Background()
	var werr, rerr error
	var n int64
	peak := PeakHeap(func() {
		w, err := tier.OpenWriter(ctx, "big", size, backend.PutOptions{})
		if err != nil {
			werr = err
			return
		}
		if _, werr = io.Copy(w, io.LimitReader(&Patterned{}, size)); werr != nil {
			w.Abort()
			return
		}
		if werr = w.Close(); werr != nil {
			return
		}
		r, err := tier.OpenReader(ctx, "big", 0, -1)
		if err != nil {
			rerr = err
			return
		}
		n, rerr = io.Copy(io.Discard, r)
		r.Close()
	})
	if werr != nil || rerr != nil || n != size {
		t.Fatalf("stream write %v, read %d bytes, %v", werr, n, rerr)
	}
	t.Logf("peak Go heap above the start: %s for a %s object", backend.FormatBytes(int64(peak)), backend.FormatBytes(size))
	if int64(peak) > limit {
		t.Fatalf("streaming %s took %s of heap: not constant memory", backend.FormatBytes(size), backend.FormatBytes(int64(peak)))
	}
}
