package disk

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"distore/backend"
)

// checkSpace fails with a *backend.SpaceError when n more bytes would leave
// less than the reserve free on the tier's file system.
func (t *Tier) checkSpace(op string, id backend.ID, n int64) error {
	return backend.CheckSpace(op, Name, id, t.dir, n, t.spaceReserve)
}

// deriveCapacity returns the configured capacity, or (capacity 0) the bytes
// used plus 90% of the file system's free space. On a file system that is
// full now (Setup opened read-only) that would be the bytes used, for good:
// there it is 90% of the file system's size, and the free-space check is
// what refuses writes until room comes back.
func (t *Tier) deriveCapacity(used int64, full bool) (int64, error) {
	if t.capacityCfg != 0 {
		return t.capacityCfg, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(t.dir, &st); err != nil {
		return 0, backend.Errorf("setup", Name, "", backend.ErrUnavailable, "statfs %s: %v", t.dir, err)
	}
	if full {
		return max(used, int64(st.Blocks)*st.Bsize/10*9), nil
	}
	return used + int64(st.Bavail)*st.Bsize/10*9, nil
}

// hasDB reports whether the directory already holds a Badger database.
func (t *Tier) hasDB() bool {
	_, err := os.Stat(filepath.Join(t.dir, "MANIFEST"))
	return err == nil
}

// ensureWritable reopens a database that Setup opened read-only (the file
// system was full) for writing, once the file system has room again. Writes
// and deletes call it first; while there is no room it fails with ErrFull.
func (t *Tier) ensureWritable(op string, id backend.ID) error {
	if !t.readOnly.Load() {
		return nil
	}
	if err := t.checkSpace(op, id, 0); err != nil {
		return err
	}
	t.life.Lock()
	defer t.life.Unlock()
	if t.db == nil {
		return backend.Errorf(op, Name, id, backend.ErrClosed, "")
	}
	if !t.readOnly.Load() {
		return nil // another write reopened it
	}
	close(t.group)
	<-t.groupDone
	if err := t.db.Close(); err != nil {
		slog.Warn("disk tier: closing the read-only database", "tier", Name, "err", err)
	}
	t.dropBallast()
	db, err := t.openDB(false)
	if err != nil {
		// Keep serving reads.
		if db, rerr := t.openDB(true); rerr == nil {
			t.db = db
			t.gcDone = make(chan struct{})
			t.startBackground(db)
		} else {
			t.db = nil
		}
		return backend.Errorf(op, Name, id, backend.ErrUnavailable, "reopen for writing: %v", err)
	}
	t.db = db
	t.readOnly.Store(false)
	t.gcDone = make(chan struct{})
	t.startBackground(db)
	slog.Info("disk tier: file system has room again; writes resume", "tier", Name, "dir", t.dir)
	return nil
}

// allocator allocates the blocks of the value-log and memtable files Badger
// writes through memory mappings. Badger creates them sparse (truncate), and
// a store into a sparse page of a full file system is SIGBUS; once allocated,
// the pages Badger writes need no new blocks whatever else fills the file
// system.
type allocator struct {
	mu      sync.Mutex
	done    map[string]bool // files allocated
	written atomic.Int64    // bytes committed since the last scan
}

func (a *allocator) reset() {
	a.mu.Lock()
	a.done = map[string]bool{}
	a.mu.Unlock()
	a.written.Store(0)
}

// scanEvery is how many committed bytes may pass between two scans for new
// Badger files: a fraction of the smallest file, so a new file is found
// early in its life.
func (t *Tier) scanEvery() int64 { return min(t.vlogFileSize, t.memtableSize) / 8 }

// noteWritten counts bytes committed and scans for new files when enough
// have been.
func (t *Tier) noteWritten(n int64) {
	if t.alloc.written.Add(n) >= t.scanEvery() {
		t.preallocate()
	}
}

// preallocate allocates the blocks of value-log and memtable files not yet
// allocated: as much of each as Badger writes before it moves to the next
// file (the file's size limit plus one commit), not the twice-as-large
// mapping Badger truncates it to. Failures are logged: the space check
// refuses writes before Badger could need the blocks.
func (t *Tier) preallocate() {
	if !t.alloc.mu.TryLock() {
		return // a scan is running
	}
	defer t.alloc.mu.Unlock()
	t.alloc.written.Store(0)
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		slog.Warn("disk tier: scan for Badger files", "tier", Name, "err", err)
		return
	}
	slack := max(t.chunkSize, putGroup, groupMaxBytes) + 1<<20
	for _, e := range entries {
		name := e.Name()
		var limit int64
		switch {
		case strings.HasSuffix(name, ".vlog"):
			limit = t.vlogFileSize + slack
		case strings.HasSuffix(name, ".mem"):
			limit = t.memtableSize + slack
		case name == "DISCARD": // value-log GC statistics, 1 MiB, mapped
			limit = 2 << 20
		default:
			continue
		}
		if t.alloc.done[name] {
			continue
		}
		if err := allocateFile(filepath.Join(t.dir, name), limit); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				slog.Warn("disk tier: allocate Badger file", "tier", Name, "file", name, "err", err)
			}
			continue
		}
		t.alloc.done[name] = true
	}
}

// ballastName is a file the tier allocates at Setup and removes just before
// it closes Badger: closing flushes the memtable into a new table file,
// written through a mapping, and the ballast's blocks are the room for it
// even when something else has filled the file system meanwhile.
const ballastName = "distore-ballast"

// placeBallast allocates the ballast (memtable_size bytes) if there is room.
func (t *Tier) placeBallast() {
	path := filepath.Join(t.dir, ballastName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, t.memtableSize); err != nil {
		_ = os.Remove(path) // no room, or no fallocate: no ballast
	}
}

// dropBallast gives the ballast's blocks back before Badger needs them.
func (t *Tier) dropBallast() { _ = os.Remove(filepath.Join(t.dir, ballastName)) }

// allocateFile allocates the first min(size, limit) bytes of the file at
// path, without changing its size.
func allocateFile(path string, limit int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := min(st.Size(), limit)
	if n <= 0 {
		return nil
	}
	err = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, n)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil // nothing to do on a file system without fallocate
	}
	return err
}
