// Package remotetest holds helpers that the tests of the Remote tiers
// (remote/s3 and remote/ceph) share.
package remotetest

import (
	"runtime"
	"sync/atomic"
	"time"
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
