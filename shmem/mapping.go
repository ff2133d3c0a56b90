package shmem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"distore/backend"
)

// mapping is the shared-memory mapping, refcounted: the store holds one
// reference and every open Object, reader and writer one more, so Teardown
// unmaps only when the last of them is closed.
type mapping struct {
	mem  []byte // the whole mapping, off the Go heap
	refs atomic.Int64
	fd   int    // the memfd or file; -1 once closed
	path string // the file, "" for a memfd
}

// openMapping creates (or, for an existing file at path, opens) the mapping.
// size is the size of a new mapping; for an existing file, size is ignored and
// existing reports true. The file is locked (flock) against a second process.
func openMapping(path string, size int64) (m *mapping, existing bool, err error) {
	var fd int
	var fileSize int64
	if path == "" {
		fd, err = unix.MemfdCreate("distore-memory", unix.MFD_CLOEXEC)
		if err != nil {
			return nil, false, fmt.Errorf("memfd_create: %w", err)
		}
	} else {
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("open %s: %w", path, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, false, fmt.Errorf("%s is in use by another process", path)
			}
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, false, fmt.Errorf("stat %s: %w", path, err)
		}
		fileSize = st.Size
	}
	if fileSize > 0 {
		existing, size = true, fileSize
		// A file kept from before may be sparse (copied, or made by
		// another tool): allocate its blocks now, so no write into the
		// mapping can meet a full file system. Blocks already there cost
		// nothing, so a restart on a full file system still works.
		if err := allocate(fd, path, size); err != nil {
			unix.Close(fd)
			return nil, false, err
		}
	} else if err := sizeFile(fd, path, size); err != nil {
		unix.Close(fd)
		if path != "" {
			_ = unix.Unlink(path) // ours: it was empty, and we hold its lock
		}
		return nil, false, err
	}
	if size > int64(^uint(0)>>1) {
		unix.Close(fd)
		return nil, false, fmt.Errorf("mapping of %d bytes is too large for this platform", size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, false, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	m = &mapping{mem: mem, fd: fd, path: path}
	m.refs.Store(1)
	return m, existing, nil
}

// prefault faults every page of the mapping in, writable, so that puts do not
// pay first-touch page faults. It works in chunks on several threads (the
// kernel zeroes pages at a few GB/s per thread) and stops when ctx is done.
func (m *mapping) prefault(ctx context.Context) error {
	const chunk = 64 << 20
	workers := max(1, min(runtime.GOMAXPROCS(0), 8, len(m.mem)/chunk))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				off := next.Add(chunk) - chunk
				if off >= int64(len(m.mem)) {
					return
				}
				b := m.mem[off:min(off+chunk, int64(len(m.mem)))]
				if err := unix.Madvise(b, unix.MADV_POPULATE_WRITE); err != nil {
					// Kernels before 5.14 lack it: touch each page instead,
					// keeping its contents (the file may hold objects).
					for i := 0; i < len(b); i += pageSize {
						atomic.AddUint32((*uint32)(unsafe.Pointer(&b[i])), 0)
					}
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// acquire adds a reference.
func (m *mapping) acquire() { m.refs.Add(1) }

// release drops a reference and unmaps on the last one.
func (m *mapping) release() {
	if m.refs.Add(-1) == 0 {
		_ = unix.Munmap(m.mem)
		m.mem = nil
	}
}

// closeFile closes the descriptor (releasing the file lock) and removes the
// file unless keep is set. The mapping itself stays until the last release.
func (m *mapping) closeFile(keep bool) error {
	var err error
	if m.path != "" && !keep {
		if e := os.Remove(m.path); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = e
		}
	}
	if m.fd >= 0 {
		if e := unix.Close(m.fd); e != nil && err == nil {
			err = e
		}
		m.fd = -1
	}
	return err
}

// allocate allocates size bytes of the file at path. ENOSPC is an error
// wrapping backend.ErrFull (a *backend.SpaceError naming the file system);
// a file system without fallocate is left to Ftruncate.
func allocate(fd int, path string, size int64) error {
	err := unix.Fallocate(fd, 0, 0, size)
	switch {
	case err == nil, errors.Is(err, unix.EOPNOTSUPP):
		return nil
	case errors.Is(err, unix.ENOSPC):
		free, _ := backend.FreeSpace(path)
		return &backend.SpaceError{Op: "setup", Tier: Name, Path: path, Requested: size, Free: free}
	}
	return fmt.Errorf("allocate %d bytes for %s: %w", size, path, err)
}

// sizeFile gives a new mapping its size. A file is allocated, not only
// truncated, so that a filesystem without room (a small /dev/shm) fails here
// with ENOSPC instead of with SIGBUS on a later write into the mapping.
func sizeFile(fd int, path string, size int64) error {
	if path != "" && size > 0 {
		if err := allocate(fd, path, size); err != nil {
			return err
		}
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		return fmt.Errorf("size the mapping to %d bytes: %w", size, err)
	}
	return nil
}
