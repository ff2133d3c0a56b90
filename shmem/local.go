package shmem

import (
	"fmt"
	"hash/crc32"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"distore/backend"
)

// This file is what the server's local socket needs from the memory tier: a
// descriptor of the arena to pass to a client process, where an object's
// bytes lie in the mapping, and where a write in progress lies, so that the
// client can fill it in place.

// ArenaFile returns a new descriptor of the arena (the memfd or the file),
// opened read-only unless writable is set, for passing to another process
// (SCM_RIGHTS). The mapping to make of it is ArenaSize bytes from offset 0.
// The caller closes the file. A read-only descriptor cannot be mapped
// writable: a client with one can read objects but not change them.
func (s *Store) ArenaFile(writable bool) (*os.File, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen("arena", ""); err != nil {
		return nil, err
	}
	mode := unix.O_RDONLY
	if writable {
		mode = unix.O_RDWR
	}
	// Re-opening through /proc gives a new open file description with its
	// own mode (a dup would share the read-write one).
	proc := fmt.Sprintf("/proc/self/fd/%d", s.m.fd)
	fd, err := unix.Open(proc, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, backend.Errorf("arena", Name, "", backend.ErrUnavailable, "re-open %s: %v", proc, err)
	}
	return os.NewFile(uintptr(fd), "distore-arena"), nil
}

// ArenaSize is the size of the whole mapping (header, table and data).
func (s *Store) ArenaSize() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return 0
	}
	return int64(len(s.m.mem))
}

// ArenaOffset returns the offset in the mapping of b's first byte, and
// whether b lies wholly in the mapping (an Object's Bytes from this tier, or
// from a stack serving this tier's object). An empty b is at offset 0.
func (s *Store) ArenaOffset(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(s.m.mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p-base+uintptr(len(b)) > uintptr(len(s.m.mem)) {
		return 0, false
	}
	return int64(p - base), true
}

// PendingRegion returns the mapping's bytes reserved for the object id being
// written (by OpenWriter, directly or through a stack), and whether there is
// such a write. A local client fills them in place; then a Write of exactly
// these bytes to the writer only checksums them (see writer.Write).
func (s *Store) PendingRegion(id backend.ID) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return nil, false
	}
	e := s.objects[id]
	if e == nil || !e.pending {
		return nil, false
	}
	return s.dataBytes(s.m, e), true
}

// ExpectChecksum sets the CRC-32C the written bytes must have: Close fails
// with ErrCorrupt, publishing nothing, if they do not. For a checksum known
// only once the bytes are written (a local client's seal).
func (w *writer) ExpectChecksum(crc uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.opts.Checksum = crc
}

// checksumParallel returns the CRC-32C of b, on up to threads goroutines.
func checksumParallel(b []byte, threads int) uint32 { return backend.ChecksumParallel(b, threads) }

// EpochSlots is the number of counters in the delete-epoch table. A power
// of two: an ID's counter is EpochSlot(id).
const EpochSlots = 4096

// EpochSlot returns the counter of the epoch table that id's deletes bump:
// the CRC-32 (IEEE) of its bytes, modulo EpochSlots. Clients compute the
// same (Go's hash/crc32, Python's zlib.crc32).
func EpochSlot(id backend.ID) int {
	return int(crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(string(id)), len(id))) & (EpochSlots - 1))
}

// epochTable is a small shared memory file of EpochSlots little-endian
// uint64 counters. The store adds one to an ID's counter whenever the ID
// leaves the objects map (a delete, a move out of this tier, an aborted
// write). A local client that keeps a reference to an object after its user
// released it may serve a later get of that ID from it, without asking the
// server, as long as the counter reads what it read before the first get:
// then no delete came in between and the reference still names what the ID
// names. Collisions only cost a round trip.
type epochTable struct {
	f   *os.File
	mem []byte
}

func newEpochTable() (*epochTable, error) {
	fd, err := unix.MemfdCreate("distore-epochs", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "distore-epochs")
	if err := f.Truncate(EpochSlots * 8); err != nil {
		f.Close()
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, EpochSlots*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &epochTable{f: f, mem: mem}, nil
}

// counter is id's counter in the shared table.
func (t *epochTable) counter(id backend.ID) *uint64 {
	return (*uint64)(unsafe.Pointer(&t.mem[EpochSlot(id)*8]))
}

func (t *epochTable) close() {
	_ = unix.Munmap(t.mem)
	t.f.Close()
}

// bumpEpoch marks id's counter: id no longer names the object it named.
// The caller holds s.mu.
func (s *Store) bumpEpoch(id backend.ID) {
	if s.epochs != nil {
		atomic.AddUint64(s.epochs.counter(id), 1)
	}
}

// Epoch returns id's delete-epoch counter (0 before any client asked for
// the table).
func (s *Store) Epoch(id backend.ID) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.epochs == nil {
		return 0
	}
	return atomic.LoadUint64(s.epochs.counter(id))
}

// EpochFile returns a read-only descriptor of the delete-epoch table
// (EpochSlots uint64 counters, see epochTable), made on the first call, for
// passing to a local client, and the number of counters. The caller closes
// the file.
func (s *Store) EpochFile() (*os.File, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen("epochs", ""); err != nil {
		return nil, 0, err
	}
	if s.epochs == nil {
		t, err := newEpochTable()
		if err != nil {
			return nil, 0, backend.Errorf("epochs", Name, "", backend.ErrUnavailable, "epoch table: %v", err)
		}
		s.epochs = t
	}
	proc := fmt.Sprintf("/proc/self/fd/%d", s.epochs.f.Fd())
	fd, err := unix.Open(proc, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, backend.Errorf("epochs", Name, "", backend.ErrUnavailable, "re-open %s: %v", proc, err)
	}
	return os.NewFile(uintptr(fd), "distore-epochs"), EpochSlots, nil
}
