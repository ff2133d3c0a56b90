// Package shmem is distore's Memory tier: objects live in one shared-memory
// mapping, off the Go heap, sub-allocated by package alloc.
//
// It registers itself as the tier "memory":
//
//	import _ "distore/shmem"
//	b, err := backend.Open(ctx, "memory", backend.Config{"capacity": "4GiB"})
//
// Config keys:
//
//	capacity     bytes for objects (default 1GiB). Each object also takes a
//	             record header: 64 bytes plus its ID rounded up to 64 (128
//	             bytes for IDs up to 64 bytes), and is rounded up to 64 bytes.
//	             Stats.Used counts these bytes, so it never exceeds Capacity
//	path         a file to map (put it on tmpfs, e.g. /dev/shm/distore); by
//	             default an anonymous memfd. With a path, committed objects
//	             survive a crash of the process (not of the machine: tmpfs is
//	             memory): the next Setup on the same path recovers them. One
//	             process at a time holds a path (flock)
//	keep         keep the file at Teardown (default false: it is removed)
//	prefault     fault the whole mapping in at Setup (default true), so puts do
//	             not pay first-touch page faults
//	max_objects  size of the object table (default: one slot per KiB of capacity)
//	verify       on recovery, check every object's CRC-32C (default true)
//	copy_threads goroutines that copy one large object (2 MiB and up) in
//	             parallel (default: DefaultCopyThreads; 1 turns it off). One
//	             core's copy and CRC-32C do not saturate the memory bus: on a
//	             2-core machine two threads put 64 MiB at 0.66x copy(), one at
//	             0.46x
//
// Put copies the bytes once, computing their CRC-32C in the same pass; Get is
// zero-copy: the Object's Bytes alias the mapping and stay valid until Close,
// even if the object is deleted meanwhile (the space is freed on the last
// Close). No system call is made per object.
//
// The mapping starts with a versioned header and an object table, and refers
// to everything by offset (see layout.go), so another process can map the
// same file. A put writes the object, then its table entry; a delete clears
// the entry first: a process killed at any moment leaves every acknowledged
// object, and no other, in the file.
package shmem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"distore/alloc"
	"distore/backend"
	"distore/levels"
)

// Name is the name the tier registers under and reports in errors and Stats.
const Name = "memory"

func init() { backend.MustRegister(Name, New) }

// Config keys this tier knows.
var configKeys = []string{"capacity", "path", "keep", "prefault", "max_objects", "verify", "copy_threads"}

// DefaultCapacity is the capacity when the config sets none.
const DefaultCapacity = 1 << 30

// Store is the Memory tier. It is safe for concurrent use.
type Store struct {
	// Configuration, fixed by New.
	capacity   int64
	path       string
	keep       bool
	prefault   bool
	maxObjects int64
	verify     bool
	threads    int

	mu     sync.RWMutex
	closed bool
	m      *mapping
	geo    geometry
	arena  *alloc.Arena
	// objects holds committed objects and, marked pending, those being
	// written (so an ID is checked and claimed with one map operation).
	objects  map[backend.ID]*entry
	peakN    int // most entries objects has held since it was (re)built
	pendingN int64
	// Table slots: slots below nextSlot are in use or in freeSlots.
	nextSlot  int64
	freeSlots []int64
	spare     []*entry // freed entries, for reuse (see newEntry)
	pinned    int64    // bytes of the arena held by pinned objects
	pinnedN   int64

	epochs  *epochTable   // for local clients' cached references; nil until asked for
	version atomic.Uint64 // bumped on every publish and delete, for the List cache
	listMu  sync.Mutex
	listVer uint64
	sorted  []backend.ID
}

// entry is one object's metadata, on the Go heap; its bytes are in the mapping.
type entry struct {
	id         backend.ID
	size       int64
	checksum   uint32
	importance int
	created    int64        // unix nanoseconds (no pointer for the GC to follow)
	accessed   atomic.Int64 // unix nanoseconds
	blk        alloc.Block  // the record's space in the arena
	slot       int64        // table slot, -1 once deleted
	pins       int          // guarded by Store.mu
	refs       atomic.Int64 // open Objects and readers
	pending    bool         // guarded by Store.mu: being written, not visible
	deleted    bool         // guarded by Store.mu: removed from the map
	freed      bool         // guarded by Store.mu: space given back
}

// New returns an unset-up Memory tier for cfg. It is the factory registered as "memory".
func New(cfg backend.Config) (backend.Backend, error) {
	r := cfg.Reader(Name, configKeys...)
	s := &Store{path: r.String("path", "")}
	s.capacity = r.Bytes("capacity", DefaultCapacity)
	r.Require(s.capacity >= dataAlign, "capacity %d is below the minimum of %d bytes", s.capacity, dataAlign)
	s.keep = r.Bool("keep", false)
	s.prefault = r.Bool("prefault", true)
	s.verify = r.Bool("verify", true)
	mo := r.Int("max_objects", 0)
	r.Require(mo >= 0, "max_objects %d is negative", mo)
	s.maxObjects = int64(mo)
	s.threads = r.Int("copy_threads", DefaultCopyThreads())
	r.Require(s.threads >= 1 && s.threads <= 64, "copy_threads %d is not between 1 and 64", s.threads)
	if err := r.Err(); err != nil {
		return nil, err
	}
	if s.maxObjects == 0 {
		s.maxObjects = max(1024, s.capacity>>10)
	}
	// Wrapped: the ID, context and lifecycle checks are backend.Wrap's, so
	// every handle on a Store has them and the Store does not repeat them.
	return backend.Wrap(Name, s), nil
}

// Setup maps the memory (creating the memfd or file, or re-opening the file
// and recovering its committed objects).
func (s *Store) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf("setup", Name, "", err, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil || s.closed {
		return backend.Errorf("setup", Name, "", backend.ErrInvalidArgument, "Setup called twice")
	}
	g := newGeometry(s.capacity, s.maxObjects)
	m, existing, err := openMapping(s.path, g.mapSize)
	if err != nil {
		var se *backend.SpaceError
		if errors.As(err, &se) {
			return err
		}
		return backend.Errorf("setup", Name, "", backend.ErrUnavailable, "%v", err)
	}
	if s.prefault {
		if err := m.prefault(ctx); err != nil {
			size := int64(len(m.mem))
			_ = m.closeFile(existing) // a file we just created goes; one with objects stays
			m.release()
			return backend.Errorf("setup", Name, "", err, "while pre-faulting %s", backend.FormatBytes(size))
		}
	}
	if existing {
		if g, err = readHeader(m.mem, int64(len(m.mem))); err != nil {
			_ = m.closeFile(true)
			m.release()
			return backend.Errorf("setup", Name, "", backend.ErrUnavailable, "%s: %v", s.path, err)
		}
		if g.capacity != newGeometry(s.capacity, s.maxObjects).capacity {
			slog.Warn("memory tier: re-opened store keeps its own capacity, not the configured one",
				"path", s.path, "capacity", g.capacity, "configured", s.capacity)
		}
	} else {
		writeHeader(m.mem, g)
	}
	s.m, s.geo = m, g
	clockStart()
	s.arena = alloc.New(g.capacity, dataAlign)
	s.objects = map[backend.ID]*entry{}
	if existing {
		s.recover()
	}
	return nil
}

// recover rebuilds the objects and the allocator from the table of a re-opened
// file. Slots that do not name a sound record are cleared and logged.
func (s *Store) recover() {
	type found struct{ slot, off int64 }
	var recs []found
	for i := range s.geo.slots {
		if off := getSlot(s.m.mem, s.geo, i); off != 0 {
			recs = append(recs, found{i, off})
		}
	}
	// In offset order, AllocAt costs O(1) each.
	slices.SortFunc(recs, func(a, b found) int { return int(a.off - b.off) })
	bad := func(f found, why string, args ...any) {
		slog.Warn("memory tier: dropping an unrecoverable object", "path", s.path, "slot", f.slot, "why", fmt.Sprintf(why, args...))
		setSlot(s.m.mem, s.geo, f.slot, 0)
	}
	now := time.Now()
	for _, f := range recs {
		r, err := readRecord(s.m.mem, s.geo, f.off)
		if err != nil {
			bad(f, "%v", err)
			continue
		}
		id := backend.ID(r.id)
		if id.Validate() != nil || s.objects[id] != nil {
			bad(f, "record at %d: invalid or duplicate ID %q", f.off, r.id)
			continue
		}
		n := dataStart(len(r.id)) + r.size
		rec := f.off - s.geo.dataOff
		blk, ok := s.arena.AllocBlockAt(rec, n)
		if !ok {
			bad(f, "object %q at %d overlaps another", id, f.off)
			continue
		}
		if s.verify {
			if got := backend.Checksum(s.m.mem[f.off+dataStart(len(r.id)) : f.off+n]); got != r.checksum {
				s.arena.FreeBlock(blk)
				bad(f, "object %q: checksum %08x, recorded %08x", id, got, r.checksum)
				continue
			}
		}
		e := &entry{id: id, size: r.size, checksum: r.checksum, importance: int(r.importance),
			created: r.created, blk: blk, slot: f.slot}
		e.accessed.Store(now.UnixNano())
		s.objects[id] = e
	}
	// Slots are taken from the top; free the gaps below it.
	for _, f := range recs {
		s.nextSlot = max(s.nextSlot, f.slot+1)
	}
	for i := s.nextSlot - 1; i >= 0; i-- {
		if getSlot(s.m.mem, s.geo, i) == 0 {
			s.freeSlots = append(s.freeSlots, i)
		}
	}
	s.version.Add(1)
	if len(recs) > 0 {
		slog.Info("memory tier: recovered objects", "path", s.path, "objects", len(s.objects), "bytes", s.arena.Used())
	}
}

// Teardown unmaps the memory once every Object handed out is closed, and
// removes the memfd or the file (unless keep is set). After it every method
// returns ErrClosed.
func (s *Store) Teardown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return backend.Errorf("teardown", Name, "", backend.ErrClosed, "")
	}
	s.closed = true
	m := s.m
	s.m, s.arena, s.objects = nil, nil, nil
	if s.epochs != nil {
		s.epochs.close() // clients' mappings of it stay valid
		s.epochs = nil
	}
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	clockStop()
	err := m.closeFile(s.keep)
	m.release()
	if err != nil {
		return backend.Errorf("teardown", Name, "", backend.ErrUnavailable, "%v", err)
	}
	return nil
}

// Level is levels.Memory.
func (s *Store) Level() levels.Level { return levels.Memory }

// check validates the ID and the context and, under s.mu (held by the
// caller), that the store is open.
func (s *Store) checkOpen(op string, id backend.ID) error {
	if s.closed || s.m == nil {
		return backend.Errorf(op, Name, id, backend.ErrClosed, "")
	}
	return nil
}

// info returns e's ObjectInfo; the caller holds s.mu.
func (e *entry) info() backend.ObjectInfo {
	return backend.ObjectInfo{ID: e.id, Size: e.size, Level: levels.Memory, Tier: Name,
		Importance: e.importance, Pins: e.pins, Created: time.Unix(0, e.created),
		Accessed: time.Unix(0, e.accessed.Load()), Checksum: e.checksum}
}

// fullError is ErrFull with a detail (fragmentation, a full object table).
type fullError struct {
	full   *backend.FullError
	detail string
}

func (e *fullError) Error() string { return e.full.Error() + ": " + e.detail }
func (e *fullError) Unwrap() error { return e.full }

// reserve takes a table slot and arena space for a record of an object of
// size bytes under id, and marks id pending. The caller holds s.mu.
func (s *Store) reserve(op string, id backend.ID, size int64) (*entry, error) {
	if err := s.checkOpen(op, id); err != nil {
		return nil, err
	}
	if e, ok := s.objects[id]; ok {
		if e.pending {
			return nil, backend.Errorf(op, Name, id, backend.ErrExists, "being written")
		}
		return nil, backend.Errorf(op, Name, id, backend.ErrExists, "")
	}
	n := dataStart(len(id)) + size
	full := func() *backend.FullError {
		fe := backend.NewFullError(op, Name, id, size, s.arena.FreeBytes(), s.arena.Capacity(), s.pinned)
		if s.arena.RoundUp(n) > s.arena.Capacity() || size > s.arena.Capacity() {
			fe.TooLarge = true // with its record header it can never fit
		}
		return fe
	}
	if size > s.arena.Capacity() || n > s.arena.Capacity() {
		return nil, full()
	}
	slot := int64(-1)
	if k := len(s.freeSlots); k > 0 {
		slot = s.freeSlots[k-1]
	} else if s.nextSlot < s.geo.slots {
		slot = s.nextSlot
	} else {
		return nil, &fullError{full(), fmt.Sprintf("object table full (%d objects; raise max_objects)", s.geo.slots)}
	}
	blk, ok := s.arena.AllocBlock(n)
	if !ok {
		fe := full()
		if need := s.arena.RoundUp(n); need <= s.arena.FreeBytes() {
			return nil, &fullError{fe, fmt.Sprintf("fragmentation: %s are free but the largest hole is %s",
				backend.FormatBytes(s.arena.FreeBytes()), backend.FormatBytes(s.arena.LargestFree()))}
		}
		return nil, fe
	}
	if k := len(s.freeSlots); k > 0 {
		s.freeSlots = s.freeSlots[:k-1]
	} else {
		s.nextSlot++
	}
	e := s.newEntry()
	e.id, e.size, e.blk, e.slot, e.pending = id, size, blk, slot, true
	s.objects[id] = e
	s.peakN = max(s.peakN, len(s.objects))
	s.pendingN++
	return e, nil
}

// unreserve gives back what reserve took, for a write that failed. The caller
// holds s.mu.
func (s *Store) unreserve(e *entry) {
	if s.closed {
		return
	}
	s.forget(e.id)
	s.pendingN--
	s.arena.FreeBlock(e.blk)
	s.freeSlots = append(s.freeSlots, e.slot)
}

// forget removes id from the objects map, and rebuilds the map once it holds
// an eighth of its peak: a Go map never shrinks, and one that held a million
// objects keeps its size (and its cache misses on every lookup, a third of a
// small put's time measured) after they are gone. The rebuild is amortized
// over the deletes that emptied it. The caller holds s.mu.
func (s *Store) forget(id backend.ID) {
	delete(s.objects, id)
	s.bumpEpoch(id)
	if n := len(s.objects); s.peakN >= shrinkMin && n < s.peakN/8 {
		m := make(map[backend.ID]*entry, max(n, s.peakN/mapHeadroom)) // maps.Clone would keep the old size
		maps.Copy(m, s.objects)
		s.objects, s.peakN = m, n
	}
}

// shrinkMin is the smallest peak after which the objects map is rebuilt.
const shrinkMin = 1 << 14

// mapHeadroom: XXX
var mapHeadroom = 64

// record returns the mapping bytes of e's record.
func (s *Store) recordBytes(m *mapping, e *entry) []byte {
	start := s.geo.dataOff + e.blk.Off()
	return m.mem[start : start+e.blk.Size() : start+e.blk.Size()]
}

// dataBytes returns the mapping bytes of e's object.
func (s *Store) dataBytes(m *mapping, e *entry) []byte {
	start := s.geo.dataOff + e.blk.Off() + dataStart(len(e.id))
	return m.mem[start : start+e.size : start+e.size]
}

// publish makes a written object visible: it writes the record header, then
// the table slot (last, so a crash never leaves a slot naming a partial
// record), and adds the entry. The caller holds s.mu.
func (s *Store) publish(op string, e *entry, opts backend.PutOptions) error {
	if err := s.checkOpen(op, e.id); err != nil {
		return err
	}
	e.pending = false
	s.pendingN--
	now := coarseNow()
	e.importance, e.created = opts.Importance, now
	if !opts.Created.IsZero() {
		e.created = opts.Created.UnixNano()
	}
	e.accessed.Store(now)
	writeRecord(s.recordBytes(s.m, e), record{id: string(e.id), size: e.size, checksum: e.checksum,
		importance: int64(e.importance), created: e.created})
	setSlot(s.m.mem, s.geo, e.slot, s.geo.dataOff+e.blk.Off())
	s.version.Add(1)
	return nil
}

// Put stores a copy of data under id, computing its checksum in the same pass.
func (s *Store) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	const op = "put"
	s.mu.Lock()
	e, err := s.reserve(op, id, int64(len(data)))
	if err != nil {
		s.mu.Unlock()
		return backend.ObjectInfo{}, err
	}
	m := s.m
	m.acquire() // Teardown may come during the copy
	s.mu.Unlock()
	defer m.release()

	// Copy outside the lock, so puts run in parallel.
	e.checksum = copyChecksum(s.dataBytes(m, e), data, s.threads)
	err = ctx.Err()
	if err == nil && opts.Checksum != 0 && opts.Checksum != e.checksum {
		err = backend.Errorf(op, Name, id, backend.ErrCorrupt, "checksum %08x, expected %08x", e.checksum, opts.Checksum)
	} else if err != nil {
		err = backend.Errorf(op, Name, id, err, "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = s.publish(op, e, opts)
	}
	if err != nil {
		s.unreserve(e)
		return backend.ObjectInfo{}, err
	}
	return e.info(), nil
}

// lookup returns the entry for id; the caller holds s.mu.
func (s *Store) lookup(op string, id backend.ID) (*entry, error) {
	if err := s.checkOpen(op, id); err != nil {
		return nil, err
	}
	e := s.objects[id]
	if e == nil || e.pending {
		return nil, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	}
	return e, nil
}

// open takes a reference on the object and the mapping, for Get and OpenReader.
func (s *Store) open(ctx context.Context, op string, id backend.ID) (*object, error) {
	now := coarseNow()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.lookup(op, id)
	if err != nil {
		return nil, err
	}
	e.refs.Add(1)
	s.m.acquire()
	e.accessed.Store(now)
	return &object{s: s, e: e, m: s.m, id: e.id, data: s.dataBytes(s.m, e), importance: e.importance,
		pins: e.pins, created: e.created, accessed: now, checksum: e.checksum}, nil
}

// closeRef drops a reference taken by open, freeing a deleted object's space
// on the last one.
func (s *Store) closeRef(e *entry, m *mapping) {
	if e.refs.Add(-1) == 0 {
		s.mu.Lock()
		if e.deleted && e.refs.Load() == 0 {
			s.free(e)
		}
		s.mu.Unlock()
	}
	m.release()
}

// free gives a deleted object's space back, once, and keeps its entry for
// reuse: nothing refers to it any more (it left the map, and its last
// Object or reader is closed). The caller holds s.mu.
func (s *Store) free(e *entry) {
	if e.freed || s.closed {
		return
	}
	e.freed = true
	s.arena.FreeBlock(e.blk)
	if len(s.spare) < maxSpare {
		s.spare = append(s.spare, e)
	}
}

// newEntry returns a zeroed entry, reusing a freed one if it can: one
// allocation less on every put, and less for the GC to do (the memory
// tier's small-object rate is bound by it). The caller holds s.mu.
func (s *Store) newEntry() *entry {
	k := len(s.spare)
	if k == 0 {
		return new(entry)
	}
	e := s.spare[k-1]
	s.spare[k-1] = nil
	s.spare = s.spare[:k-1]
	*e = entry{}
	return e
}

// maxSpare bounds the entries kept for reuse.
const maxSpare = 1024

// Get returns the object; its Bytes alias the shared mapping (zero-copy) and
// stay valid until Close.
func (s *Store) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	o, err := s.open(ctx, "get", id)
	if err != nil {
		return nil, err // a nil *object must not become a non-nil interface
	}
	return o, nil
}

// Delete removes the object. Its space is reused once no Object still reads it.
func (s *Store) Delete(ctx context.Context, id backend.ID) error {
	const op = "delete"
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(op, id)
	if err != nil {
		return err
	}
	if e.pins > 0 {
		return backend.Errorf(op, Name, id, backend.ErrPinned, "pin count %d", e.pins)
	}
	// Clear the table slot first: from now on a crash does not bring it back.
	setSlot(s.m.mem, s.geo, e.slot, 0)
	s.freeSlots = append(s.freeSlots, e.slot)
	e.slot = -1
	s.forget(id)
	e.deleted = true
	s.version.Add(1)
	if e.refs.Load() == 0 {
		s.free(e)
	}
	return nil
}

// ObjectInfo returns the object's metadata.
func (s *Store) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	const op = "info"
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.lookup(op, id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return e.info(), nil
}

// OpenReader reads length bytes from offset straight from the mapping.
func (s *Store) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	const op = "read"
	o, err := s.open(ctx, op, id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange(op, Name, id, offset, length, int64(len(o.data)))
	if err != nil {
		o.Close()
		return nil, err
	}
	return &reader{data: o.data[offset : offset+n], obj: o}, nil
}

// List returns a page of objects in ascending ID order.
func (s *Store) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	const op = "list"
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf(op, Name, "", err, "")
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(op, ""); err != nil {
		return nil, err
	}
	ids := s.sortedIDs()
	start := max(string(opts.After), opts.Prefix)
	i, _ := slices.BinarySearch(ids, backend.ID(start))
	var out []backend.ObjectInfo
	for ; i < len(ids) && len(out) < limit; i++ {
		id := ids[i]
		if !strings.HasPrefix(string(id), opts.Prefix) {
			break // sorted: no later ID has the prefix
		}
		if id == opts.After {
			continue
		}
		if e := s.objects[id]; e != nil && !e.pending {
			out = append(out, e.info())
		}
	}
	return out, nil
}

// sortedIDs returns the IDs in order, re-sorting only after a change. The
// caller holds s.mu (read).
func (s *Store) sortedIDs() []backend.ID {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if v := s.version.Load(); v != s.listVer || s.sorted == nil {
		s.sorted = slices.Sorted(maps.Keys(s.objects))
		s.listVer = v
	}
	return s.sorted
}

// Pin adds one to the object's pin count.
func (s *Store) Pin(ctx context.Context, id backend.ID) error {
	return s.addPin(ctx, "pin", id, +1)
}

// Unpin takes one from the object's pin count; ErrNotPinned if it has none.
func (s *Store) Unpin(ctx context.Context, id backend.ID) error {
	return s.addPin(ctx, "unpin", id, -1)
}

// addPin changes the object's pin count by d (+1 or -1; ErrNotPinned below
// zero). The pinned counters count the records of objects with a pin.
func (s *Store) addPin(ctx context.Context, op string, id backend.ID, d int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.lookup(op, id)
	if err != nil {
		return err
	}
	if e.pins+d < 0 {
		return backend.Errorf(op, Name, id, backend.ErrNotPinned, "")
	}
	if (e.pins == 0) != (e.pins+d == 0) { // the first pin or the last unpin
		s.pinned += int64(d) * e.blk.Size()
		s.pinnedN += int64(d)
	}
	e.pins += d
	return nil
}

// Prefetch checks that the object exists: memory is already the fastest place
// this tier has.
func (s *Store) Prefetch(ctx context.Context, id backend.ID) error {
	_, err := s.ObjectInfo(ctx, id)
	if err != nil {
		var be *backend.Error
		if errors.As(err, &be) {
			be.Op = "prefetch"
		}
	}
	return err
}

// Stats reports the data region's capacity, the bytes allocated in it
// (records, including those of deleted objects still open and of writes in
// progress) and the objects.
func (s *Store) Stats(ctx context.Context) (backend.Stats, error) {
	if err := ctx.Err(); err != nil {
		return backend.Stats{}, backend.Errorf("stats", Name, "", err, "")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen("stats", ""); err != nil {
		return backend.Stats{}, err
	}
	return backend.Stats{Tier: Name, Level: levels.Memory, Capacity: s.arena.Capacity(), Used: s.arena.Used(),
		Objects: int64(len(s.objects)) - s.pendingN, Pinned: s.pinned, PinnedObjects: s.pinnedN}, nil
}

// LargestFree returns the largest object size that fits now (the largest hole
// less a record header for a short ID), for callers that want to tell
// fragmentation from fullness.
func (s *Store) LargestFree() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.arena == nil {
		return 0
	}
	return max(0, s.arena.LargestFree()-dataStart(1))
}

// reader is OpenReader's ReadCloser: it reads a range of the mapping and
// holds a reference on the object until Close.
type reader struct {
	data   []byte
	pos    int
	obj    *object
	closed bool
}

// Info is the object's metadata as OpenReader found it.
func (r *reader) Info() backend.ObjectInfo { return r.obj.Info() }

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, backend.Errorf("read", Name, r.obj.id, backend.ErrClosed, "reader closed")
	}
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.pos:])
	r.pos += n
	return n, nil
}

// WriteTo writes the rest of the range in one call, so io.Copy needs no buffer.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	if r.closed {
		return 0, backend.Errorf("read", Name, r.obj.id, backend.ErrClosed, "reader closed")
	}
	n, err := w.Write(r.data[r.pos:])
	r.pos += n
	return int64(n), err
}

// Close releases the object; a second Close is a no-op.
func (r *reader) Close() error {
	r.closed = true
	return r.obj.Close()
}

// DefaultCopyThreads is the default copy_threads: every CPU Go may use, at
// most 4 (beyond that the memory bus, not the CPUs, is the limit).
func DefaultCopyThreads() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }
