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
	return &mapping{data: data}, nil
}

func (m *mapping) unmap() {
	if m.data != nil {
		_ = unix.Munmap(m.data)
		m.data = nil
	}
}

// hugeMin: ranges this long are backed by transparent huge pages.
const hugeMin = 1 << 20

// populate prepares [off, off+n) to be written: a range of hugeMin bytes or
// more asks for transparent huge pages (over the 2 MiB pages it touches), and
// the pages are faulted in by one call. On a virtual machine a page fault
// costs microseconds: a 10 MiB selection would otherwise take 2,560 of them,
// more than its reads. Small ranges (footers, metadata) keep 4 KiB pages,
// so that they do not zero 2 MiB each. Best effort: a kernel without
// MADV_POPULATE_WRITE (before 5.14) or THP faults page by page.
func (m *mapping) populate(off, n int64) {
	size := int64(len(m.data))
	if n >= hugeMin {
		lo, hi := off&^(hugePage-1), min((off+n+hugePage-1)&^(hugePage-1), size)
		_ = unix.Madvise(m.data[lo:hi], unix.MADV_HUGEPAGE)
	}
	lo, hi := off&^int64(pageSize-1), min(off+n, size)
	if hi > lo {
		_ = unix.Madvise(m.data[lo:hi], unix.MADV_POPULATE_WRITE)
	}
}

const hugePage = 2 << 20

var pageSize = os.Getpagesize()
