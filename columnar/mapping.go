package columnar

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapping is private anonymous memory as large as a file: pages that are
// never written cost nothing (MAP_NORESERVE), so a mapping of a 1 TiB object
// holds only the ranges fetched into it. It lives off the Go heap; arrays
// built over it are valid until unmap.
type mapping struct {
	data []byte
}

func newMapping(size int64) (*mapping, error) {
	data, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	// Transparent huge pages: a fetched range of some MiB then costs a few
	// faults, not one per 4 KiB page (on a virtual machine each costs
	// microseconds); untouched 2 MiB regions still cost nothing.
	_ = unix.Madvise(data, unix.MADV_HUGEPAGE)
	return &mapping{data: data}, nil
}

func (m *mapping) unmap() {
	if m.data != nil {
		_ = unix.Munmap(m.data)
		m.data = nil
	}
}

// populate faults in the pages of [off, off+n) in one call before they are
// written: cheaper than a page fault per 4 KiB page. Best effort: a kernel
// without MADV_POPULATE_WRITE (before 5.14) faults them one by one.
func (m *mapping) populate(off, n int64) {
	lo := off &^ int64(pageSize-1)
	hi := min(off+n, int64(len(m.data)))
	if hi > lo {
		_ = unix.Madvise(m.data[lo:hi], unix.MADV_POPULATE_WRITE)
	}
}

var pageSize = os.Getpagesize()
