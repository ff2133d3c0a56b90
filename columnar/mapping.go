package columnar

import (
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
