//go:build linux

package gpu

import (
	"sync"
	"syscall"
)

// Freed simulated pinned memory stays mapped, inaccessible, so that a late
// access faults rather than reads whatever the next allocation put there;
// the oldest is unmapped once the quarantine holds more than this.
const hostQuarantine = 512

var (
	quarantineMu sync.Mutex
	quarantine   [][]byte
)

// hostMap returns n bytes of anonymous memory outside the Go heap, as
// cuMemHostAlloc's pinned memory is.
func hostMap(n int) ([]byte, error) {
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
}

// hostUnmap frees memory from hostMap as cuMemFreeHost does, but gives back
// its pages and makes the range inaccessible instead of unmapping it at once:
// a use after free faults (a test turns the fault into a failure with
// debug.SetPanicOnFault), where on a GPU machine it would crash or read
// another buffer.
func hostUnmap(b []byte) error {
	if err := syscall.Madvise(b, syscall.MADV_DONTNEED); err != nil {
		return err
	}
	if err := syscall.Mprotect(b, syscall.PROT_NONE); err != nil {
		return err
	}
	quarantineMu.Lock()
	defer quarantineMu.Unlock()
	quarantine = append(quarantine, b)
	if len(quarantine) > hostQuarantine {
		old := quarantine[0]
		quarantine = quarantine[1:]
		return syscall.Munmap(old)
	}
	return nil
}
