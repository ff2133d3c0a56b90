// Package disk is distore's Disk tier: objects of any size in a Badger v4
// database on local disk, registered as "disk".
//
//	import _ "distore/disk"
//	b, err := backend.Open(ctx, "disk", backend.Config{"dir": "/var/lib/distore/disk"})
//
// # Layout
//
// An object is stored as chunks (chunk_size bytes, 1 MiB by default) under
// keys private to one write (a random 64-bit write token), plus one manifest
// key per object holding its size, importance, creation time, its CRC-32C and
// each chunk's CRC-32C. The manifest is committed last, so an object is
// visible exactly when its manifest is: a write that fails, is aborted, or is
// cut by a crash leaves only chunks whose token no manifest names, and those
// are removed when the tier is next set up. Chunks live in Badger's value log
// (the value threshold is 1 KiB), so the LSM tree holds only keys and
// pointers and stays small; the value log is garbage-collected in the
// background, and at once after large deletes, so deleted space comes back.
//
// Every chunk is verified against its CRC-32C on every read and a Get also
// checks the object's checksum; a mismatch, a missing chunk or a Badger
// checksum error is an error wrapping backend.ErrCorrupt that names the object
// and the chunk. Bad bytes are never returned.
//
// # Configuration
//
//	dir            directory of the database (required; created if missing)
//	capacity       bytes of object data the tier accepts (default, or 0: the
//	               bytes it already holds plus 90% of the file system's free
//	               space at Setup). Only object bytes count; Badger's own overhead and
//	               value-log garbage not yet collected come on top.
//	sync           true (default): Put, Writer.Close and Delete return only
//	               once the change is on stable storage (Badger's SyncWrites:
//	               fsync of the value log and of the memtable WAL per commit;
//	               concurrent small commits are merged into one, so they share
//	               those fsyncs). false: they return once the change is in the
//	               OS page cache: a process crash loses nothing, a power
//	               failure may lose the last writes, and an object whose bytes
//	               did not reach the disk then reads as ErrCorrupt, never as
//	               bad bytes.
//	chunk_size     bytes per chunk (default 1MiB, 64KiB to 64MiB)
//	vlog_file_size bytes per value-log file (default 256MiB, 16MiB to 1GiB):
//	               the unit in which space is given back
//	gc_interval    period of the background value-log GC (default 1m)
//	gc_after       bytes deleted that start a full reclaim at once (default 256MiB)
//	memtable_size  bytes of Badger's memtable (default 64MiB, 1MiB to 1GiB)
//	reserve        bytes of the file system kept free (default vlog_file_size
//	               + 2 × memtable_size: 384MiB with the defaults). See Free space.
//
// # Free space
//
// Badger writes its value log and memtable through memory mappings, and a
// write into a mapping of a full file system kills the process with SIGBUS.
// So the tier never lets Badger write into space that may not be there:
//
//   - every write (Put, OpenWriter) first checks the file system's free space
//     (statfs) and fails with an error wrapping backend.ErrFull (a
//     *backend.SpaceError naming the directory, its free bytes and the
//     reserve) when the object would leave less than reserve bytes free. The
//     reserve is room for Badger's own growth: the next value-log file, the
//     next memtable and its flush.
//   - the value-log and memtable files Badger writes into are allocated
//     (fallocate) as soon as the tier sees them, so writes into them never
//     need new blocks even when something else fills the file system.
//   - Setup on a file system with less than reserve free opens the database
//     read-only: the tier serves reads, and writes (and deletes) fail with
//     ErrFull until space comes back, when the next write reopens the
//     database for writing.
//
// # Memory
//
// Put writes the caller's bytes without copying them first. OpenWriter holds
// at most 8 chunks (8 MiB by default) whatever the object's size, and
// OpenReader one chunk. Get reads the object into a heap buffer, so its bytes
// stay valid after a concurrent Delete. Badger maps its value-log files, so
// pages the tier wrote or read count in the process's RSS as file-backed
// memory (RssFile): that is page cache, which the kernel reclaims, not heap.
//
// # Persistence
//
// Pins are runtime-only: they are kept in memory and not persisted, so after a
// restart every object is unpinned. Access times are runtime-only too (they
// start at the creation time). Objects, importance, creation times and
// checksums persist.
package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/y"

	"distore/backend"
	"distore/levels"
)

// Name is the name the tier registers under and reports in errors and Stats.
const Name = "disk"

// Defaults of the configuration keys.
const (
	DefaultChunkSize    = 1 << 20
	DefaultVlogFileSize = 256 << 20
	DefaultGCInterval   = time.Minute
	DefaultGCAfter      = 256 << 20
	DefaultMemtableSize = 64 << 20
)

// valueThreshold: values of at least this many bytes go to the value log.
const valueThreshold = 1 << 10

// writeDepth is how many chunk commits one streamed write keeps in flight,
// so copies overlap Badger's writes and, with sync, several chunks share an
// fsync; it bounds a writer's memory to writeDepth chunks.
const writeDepth = 8

// putGroup is the most bytes of chunks one Put commits in one transaction,
// and putDepth how many such transactions it keeps in flight. Badger writes
// the entries of one transaction to the value log in random order (it keeps
// them in a map), while transactions in flight reach the value log in the
// order they were committed. So one chunk per transaction (putGroup = the
// default chunk size) lays an object's chunks out in order on disk: with
// 4-chunk groups a cold 64 MiB Get read ~0.08 GB/s where 1 MiB objects read
// ~1 GB/s on the same disk; with 1-chunk groups about twice as fast in a
// probe on a busy machine (docs/tier-contract.md). Badger merges the commits
// in flight into one value-log write and one fsync, so more transactions do
// not mean more fsyncs. putGroup is a variable so the crash test can cut the
// pipelined path with small objects.
var putGroup int64 = 1 << 20

const putDepth = 16

// readParallel is how many chunks a Get reads at once, so a cold read keeps
// the disk busy.
const readParallel = 4

func init() { backend.MustRegister(Name, New) }

// Tier is the Disk tier. Make it with New (or backend.Open("disk", cfg)).
type Tier struct {
	dir          string
	capacityCfg  int64 // 0: derive from free space at Setup
	sync         bool
	chunkSize    int64
	vlogFileSize int64
	gcInterval   time.Duration
	gcAfter      int64
	memtableSize int64
	spaceReserve int64 // bytes of the file system kept free

	// readOnly is set while the database is open read-only (Setup found the
	// file system full); writes reopen it once there is room.
	readOnly atomic.Bool
	// alloc tracks the Badger files already allocated (see preallocate).
	alloc allocator

	// life guards db: every use of db holds it for reading; Teardown takes
	// it for writing, so it waits for operations in flight.
	life sync.RWMutex
	db   *badger.DB
	// commitMu is held for reading around every commit, and for writing while
	// the reclaimer forces a memtable flush (Badger refuses commits then).
	commitMu sync.RWMutex

	mu            sync.Mutex
	open          bool
	objs          map[backend.ID]*object
	capacity      int64
	used          int64 // committed bytes plus bytes reserved by writes in flight
	writing       int64 // bytes reserved by writes in flight
	objects       int64
	pinned        int64
	pinnedObjects int64

	deletedSince atomic.Int64 // bytes deleted since the last full reclaim
	kick         chan struct{}
	stop         chan struct{}
	gcDone       chan struct{}
	group        chan *groupReq // the group committer's queue
	groupDone    chan struct{}

	// chunkReads counts chunk reads (tests check that ranges touch only the
	// chunks they need).
	chunkReads atomic.Int64
}

type objState uint8

const (
	stateWriting  objState = iota // reserved by a write in flight: invisible
	stateLive                     // committed
	stateDeleting                 // manifest delete in flight: invisible
)

// object is the in-memory index entry of an object. The manifest fields are
// immutable once live; the rest is guarded by Tier.mu.
type object struct {
	id backend.ID
	manifest
	state    objState
	pins     int
	accessed time.Time
	readers  int  // Gets and readers in progress: chunks stay until they end
	dropped  bool // manifest deleted; drop chunks when readers reaches 0
}

func (o *object) info() backend.ObjectInfo {
	return backend.ObjectInfo{ID: o.id, Size: o.size, Level: levels.Disk, Tier: Name,
		Importance: o.importance, Pins: o.pins, Created: o.created, Accessed: o.accessed,
		Checksum: o.checksum}
}

// New makes a Disk tier from cfg (see the package documentation for the
// keys). It validates cfg and does no I/O; Setup opens the database.
func New(cfg backend.Config) (backend.Backend, error) {
	r := cfg.Reader(Name, "dir", "capacity", "sync", "chunk_size", "vlog_file_size",
		"gc_interval", "gc_after", "memtable_size", "reserve")
	t := &Tier{dir: r.String("dir", "")}
	r.Require(t.dir != "", "option dir is required")
	t.capacityCfg = r.Bytes("capacity", 0)
	t.sync = r.Bool("sync", true)
	t.chunkSize = r.Bytes("chunk_size", DefaultChunkSize)
	t.vlogFileSize = r.Bytes("vlog_file_size", DefaultVlogFileSize)
	t.gcInterval = r.Duration("gc_interval", DefaultGCInterval)
	t.gcAfter = r.Bytes("gc_after", DefaultGCAfter)
	t.memtableSize = r.Bytes("memtable_size", DefaultMemtableSize)
	t.spaceReserve = r.Bytes("reserve", t.vlogFileSize+2*t.memtableSize)
	r.Require(t.chunkSize >= 64<<10 && t.chunkSize <= 64<<20, "chunk_size %d is outside 64KiB..64MiB", t.chunkSize)
	r.Require(t.vlogFileSize >= 16<<20 && t.vlogFileSize <= 1<<30, "vlog_file_size %d is outside 16MiB..1GiB", t.vlogFileSize)
	r.Require(t.chunkSize <= t.vlogFileSize/4, "chunk_size %d is more than a quarter of vlog_file_size %d", t.chunkSize, t.vlogFileSize)
	r.Require(t.gcInterval > 0, "gc_interval must be positive")
	r.Require(t.gcAfter > 0, "gc_after must be positive")
	r.Require(t.memtableSize >= 1<<20 && t.memtableSize <= 1<<30, "memtable_size %d is outside 1MiB..1GiB", t.memtableSize)
	if err := r.Err(); err != nil {
		return nil, err
	}
	// Wrapped: the ID, context and lifecycle checks are backend.Wrap's.
	return backend.Wrap(Name, t), nil
}

// Level reports levels.Disk.
func (t *Tier) Level() levels.Level { return levels.Disk }

// Dir returns the tier's directory.
func (t *Tier) Dir() string { return t.dir }

// badgerLogger sends Badger's warnings and errors to slog and drops the rest.
type badgerLogger struct{ dir string }

func (l badgerLogger) Errorf(f string, a ...any) {
	slog.Error("badger: "+fmt.Sprintf(f, a...), "tier", Name, "dir", l.dir)
}
func (l badgerLogger) Warningf(f string, a ...any) {
	slog.Warn("badger: "+fmt.Sprintf(f, a...), "tier", Name, "dir", l.dir)
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

func (t *Tier) badgerOptions() badger.Options {
	return badger.DefaultOptions(t.dir).
		WithLogger(badgerLogger{t.dir}).
		WithSyncWrites(t.sync).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(t.vlogFileSize).
		WithMemTableSize(t.memtableSize).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false). // the index serialises writers of an ID
		WithCompression(options.None).
		WithBlockCacheSize(32 << 20).
		WithNumCompactors(2).
		WithMetricsEnabled(false)
}

// Setup opens (or creates) the database, rebuilds the index from the
// manifests and removes the chunks of writes that never committed.
func (t *Tier) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf("setup", Name, "", err, "")
	}
	t.life.Lock()
	defer t.life.Unlock()
	if t.db != nil {
		return backend.Errorf("setup", Name, "", backend.ErrInvalidArgument, "already set up")
	}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return backend.Errorf("setup", Name, "", backend.ErrUnavailable, "%v", err)
	}
	// Opening for writing makes Badger write a new memtable and value-log
	// file: on a full file system, open read-only and serve reads.
	readOnly := false
	if err := t.checkSpace("setup", "", 0); err != nil {
		if !errors.Is(err, backend.ErrFull) || !t.hasDB() {
			return err
		}
		slog.Warn("disk tier: file system full; serving reads only until space comes back", "tier", Name, "err", err)
		readOnly = true
	}
	t.alloc.reset()
	db, err := t.openDB(readOnly)
	if err != nil {
		return err
	}
	objs, used, orphans, err := load(ctx, db, !readOnly)
	if err != nil {
		_ = db.Close()
		return err
	}
	capacity, err := t.deriveCapacity(used, readOnly)
	if err != nil {
		_ = db.Close()
		return err
	}
	t.mu.Lock()
	t.db, t.open, t.objs = db, true, objs
	t.capacity, t.used, t.objects = capacity, used, int64(len(objs))
	t.pinned, t.pinnedObjects = 0, 0
	t.mu.Unlock()
	t.kick, t.stop, t.gcDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	t.deletedSince.Store(0)
	if orphans > 0 {
		slog.Info("disk tier removed the chunks of uncommitted writes", "tier", Name, "dir", t.dir, "chunks", orphans)
		t.deletedSince.Store(t.gcAfter)
		t.kick <- struct{}{}
	}
	t.readOnly.Store(readOnly)
	t.startBackground(db)
	return nil
}

// startBackground starts the group committer and, on a writable database, the
// value-log GC, and allocates Badger's files; t.life is held for writing.
func (t *Tier) startBackground(db *badger.DB) {
	t.group, t.groupDone = make(chan *groupReq, groupMaxEntries), make(chan struct{})
	go t.committer(db, t.group, t.groupDone)
	if t.readOnly.Load() {
		close(t.gcDone) // no GC on a read-only database
		return
	}
	go t.gcLoop(db, t.stop, t.gcDone, t.kick)
	t.preallocate()
	t.placeBallast()
}

// openDB opens the Badger database, read-only or for writing.
func (t *Tier) openDB(readOnly bool) (*badger.DB, error) {
	db, err := badger.Open(t.badgerOptions().WithReadOnly(readOnly))
	if err != nil {
		return nil, backend.Errorf("setup", Name, "", backend.ErrUnavailable, "open badger in %s: %v", t.dir, err)
	}
	return db, nil
}

// load reads every manifest into the index and deletes orphan chunks (chunks
// whose write token no manifest names).
func load(ctx context.Context, db *badger.DB, removeOrphans bool) (map[backend.ID]*object, int64, int, error) {
	objs := map[backend.ID]*object{}
	tokens := map[uint64]bool{}
	var used int64
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{kindManifest}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			id := backend.ID(item.Key()[1:])
			var m *manifest
			err := item.Value(func(v []byte) (err error) {
				m, err = decodeManifest(v)
				return err
			})
			if err != nil {
				// A manifest Badger stored but that does not decode is corrupt;
				// keep the tier usable and say which object is lost.
				slog.Error("disk tier: unreadable manifest skipped", "tier", Name, "id", id, "err", err)
				continue
			}
			objs[id] = &object{id: id, manifest: *m, state: stateLive, accessed: m.created}
			tokens[m.token] = true
			used += m.size
		}
		return nil
	})
	if err != nil {
		return nil, 0, 0, backend.Errorf("setup", Name, "", backend.ErrUnavailable, "read manifests: %v", err)
	}
	if !removeOrphans {
		return objs, used, 0, nil
	}
	var orphans [][]byte
	err = db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{kindChunk}
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) == 13 && !tokens[binary.BigEndian.Uint64(k[1:])] {
				orphans = append(orphans, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err == nil && len(orphans) > 0 {
		err = deleteKeys(db, len(orphans), func(i int) []byte { return orphans[i] })
	}
	if err != nil {
		return nil, 0, 0, backend.Errorf("setup", Name, "", backend.ErrUnavailable, "remove orphan chunks: %v", err)
	}
	return objs, used, len(orphans), nil
}

// Teardown stops the background GC, waits for operations in flight and closes
// the database. Objects returned by Get stay valid (they are heap copies).
func (t *Tier) Teardown(ctx context.Context) error {
	t.mu.Lock()
	wasOpen := t.open
	t.open = false
	t.mu.Unlock()
	if !wasOpen {
		return backend.Errorf("teardown", Name, "", backend.ErrClosed, "")
	}
	close(t.stop)
	t.life.Lock() // no reopen (ensureWritable) swaps gcDone from here on
	defer t.life.Unlock()
	<-t.gcDone
	close(t.group) // no caller holds acquire now, so none can send
	<-t.groupDone
	t.dropBallast()
	err := t.db.Close()
	t.db = nil
	if err != nil {
		return backend.Errorf("teardown", Name, "", backend.ErrUnavailable, "close badger: %v", err)
	}
	return nil
}

// acquire returns the database for one operation; release must be called
// when the operation is done with it. It fails with ErrClosed after Teardown.
// Never call acquire while holding it: a pending Teardown would deadlock.
func (t *Tier) acquire(op string, id backend.ID) (*badger.DB, error) {
	t.life.RLock()
	if t.db == nil {
		t.life.RUnlock()
		return nil, backend.Errorf(op, Name, id, backend.ErrClosed, "")
	}
	return t.db, nil
}

func (t *Tier) release() { t.life.RUnlock() }

// lookup returns the live object id; t.mu must be held.
func (t *Tier) lookup(op string, id backend.ID) (*object, error) {
	if !t.open {
		return nil, backend.Errorf(op, Name, id, backend.ErrClosed, "")
	}
	o, ok := t.objs[id]
	if !ok || o.state != stateLive {
		return nil, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	}
	return o, nil
}

// ObjectInfo returns the object's metadata from the in-memory index.
func (t *Tier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, err := t.lookup("info", id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return o.info(), nil
}

// Prefetch checks that the object exists: the disk is this tier's only place.
func (t *Tier) Prefetch(ctx context.Context, id backend.ID) error {
	_, err := t.ObjectInfo(ctx, id)
	if err != nil {
		var e *backend.Error
		if errors.As(err, &e) {
			e.Op = "prefetch"
		}
	}
	return err
}

// Pin adds one to the object's pin count (in memory only; see the package
// documentation).
func (t *Tier) Pin(ctx context.Context, id backend.ID) error {
	return t.addPin(ctx, "pin", id, +1)
}

// Unpin takes one from the object's pin count.
func (t *Tier) Unpin(ctx context.Context, id backend.ID) error {
	return t.addPin(ctx, "unpin", id, -1)
}

// addPin changes the object's pin count by d (+1 or -1; ErrNotPinned below
// zero). The pinned counters count objects with at least one pin.
func (t *Tier) addPin(ctx context.Context, op string, id backend.ID, d int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, err := t.lookup(op, id)
	if err != nil {
		return err
	}
	if o.pins+d < 0 {
		return backend.Errorf(op, Name, id, backend.ErrNotPinned, "")
	}
	if (o.pins == 0) != (o.pins+d == 0) { // the first pin or the last unpin
		t.pinned += int64(d) * o.size
		t.pinnedObjects += int64(d)
	}
	o.pins += d
	return nil
}

// Stats reports capacity, bytes used (committed objects plus writes in
// flight) and object counts, from counters kept in memory.
func (t *Tier) Stats(ctx context.Context) (backend.Stats, error) {
	if err := ctx.Err(); err != nil {
		return backend.Stats{}, backend.Errorf("stats", Name, "", err, "")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.open {
		return backend.Stats{}, backend.Errorf("stats", Name, "", backend.ErrClosed, "")
	}
	return backend.Stats{Tier: Name, Level: levels.Disk, Capacity: t.capacity, Used: t.used,
		Objects: t.objects, Pinned: t.pinned, PinnedObjects: t.pinnedObjects}, nil
}

// List returns a page of live objects in ascending ID order. It walks the
// manifest keys (ordered by Badger) without reading their values.
func (t *Tier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf("list", Name, "", err, "")
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	db, err := t.acquire("list", "")
	if err != nil {
		return nil, err
	}
	defer t.release()
	prefix := append([]byte{kindManifest}, opts.Prefix...)
	var out []backend.ObjectInfo
	err = db.View(func(txn *badger.Txn) error {
		iopts := badger.DefaultIteratorOptions
		iopts.Prefix = prefix
		iopts.PrefetchValues = false
		it := txn.NewIterator(iopts)
		defer it.Close()
		start := prefix
		if opts.After != "" && string(opts.After) > opts.Prefix {
			start = manifestKey(opts.After)
		}
		var ids []backend.ID
		for it.Seek(start); it.Valid() && len(ids) < limit; it.Next() {
			id := backend.ID(it.Item().Key()[1:])
			if opts.After != "" && id <= opts.After {
				continue
			}
			ids = append(ids, id)
			if len(ids)%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, id := range ids {
			if o, ok := t.objs[id]; ok && o.state == stateLive {
				out = append(out, o.info())
			}
		}
		return nil
	})
	if err != nil {
		return nil, backend.Errorf("list", Name, "", backend.ErrUnavailable, "%v", err)
	}
	return out, nil
}

// reserve claims id and size bytes for a write; the object stays invisible
// until publish.
func (t *Tier) reserve(op string, id backend.ID, size int64) (*object, error) {
	if err := t.ensureWritable(op, id); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.open {
		return nil, backend.Errorf(op, Name, id, backend.ErrClosed, "")
	}
	if _, ok := t.objs[id]; ok {
		return nil, backend.Errorf(op, Name, id, backend.ErrExists, "")
	}
	if free := t.capacity - t.used; size > free {
		return nil, backend.NewFullError(op, Name, id, size, max(free, 0), t.capacity, t.pinned)
	}
	// The file system: this object and the writes in flight must leave the
	// reserve free.
	if err := t.checkSpace(op, id, size+t.writing); err != nil {
		return nil, err
	}
	t.writing += size
	o := &object{id: id, state: stateWriting}
	o.size, o.chunkSize, o.token = size, t.chunkSize, newToken()
	t.objs[id] = o
	t.used += size
	return o, nil
}

// unreserve gives back what reserve took, for a write that did not commit.
func (t *Tier) unreserve(o *object) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.objs[o.id] == o {
		delete(t.objs, o.id)
		t.used -= o.size
		t.writing -= o.size
	}
}

// publish makes a committed write visible.
func (t *Tier) publish(o *object) backend.ObjectInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	o.state = stateLive
	o.accessed = o.created
	t.objects++
	t.writing -= o.size
	return o.info()
}

// Delete removes the object: its manifest at once (durably, with sync), its
// chunks as soon as no Get or reader is using them.
func (t *Tier) Delete(ctx context.Context, id backend.ID) error {
	if err := t.ensureWritable("delete", id); err != nil {
		return err
	}
	t.mu.Lock()
	o, err := t.lookup("delete", id)
	if err == nil && o.pins > 0 {
		err = backend.Errorf("delete", Name, id, backend.ErrPinned, "%d pins", o.pins)
	}
	if err != nil {
		t.mu.Unlock()
		return err
	}
	o.state = stateDeleting // invisible; the ID stays taken until the delete commits
	// With no reader, none can start now: the chunks go in the same commit.
	n := o.nchunks()
	inline := o.readers == 0 && n <= groupMaxEntries-1
	t.mu.Unlock()

	entries := 1
	if inline {
		entries += n
	}
	err = t.commit("delete", id, entries, 0, func(txn *badger.Txn) error {
		// The manifest first: should Badger ever split this, the object is
		// gone before any of its chunks.
		if err := txn.Delete(manifestKey(id)); err != nil {
			return err
		}
		for i := 0; inline && i < n; i++ {
			if err := txn.Delete(chunkKey(o.token, uint32(i))); err != nil {
				return err
			}
		}
		return nil
	})
	t.mu.Lock()
	if err != nil {
		o.state = stateLive
		t.mu.Unlock()
		return err
	}
	delete(t.objs, id)
	t.used -= o.size
	t.objects--
	o.dropped = true
	drop := !inline && o.readers == 0
	t.mu.Unlock()
	if inline {
		t.noteDeleted(o.size)
	} else if drop {
		t.dropChunks(o)
	}
	return nil
}

// dropChunks deletes the chunks of a deleted object.
func (t *Tier) dropChunks(o *object) { t.dropChunkKeys(o.id, o.token, o.nchunks(), o.size) }

// dropChunkKeys deletes chunks 0..n-1 of the write token and counts bytes
// towards the next reclaim. Failures are only logged: the chunks are orphans
// then, removed at the next Setup.
func (t *Tier) dropChunkKeys(id backend.ID, token uint64, n int, bytes int64) {
	if n == 0 {
		return
	}
	db, err := t.acquire("delete", id)
	if err != nil {
		return
	}
	defer t.release()
	t.commitMu.RLock()
	defer t.commitMu.RUnlock()
	if err := deleteKeys(db, n, func(i int) []byte { return chunkKey(token, uint32(i)) }); err != nil {
		slog.Warn("disk tier: chunks not deleted; they are removed at the next setup", "tier", Name, "id", id, "err", err)
		return
	}
	t.noteDeleted(bytes)
}

// deleteKeys deletes key(0)..key(n-1) in one write batch.
func deleteKeys(db *badger.DB, n int, key func(i int) []byte) error {
	wb := db.NewWriteBatch()
	for i := range n {
		if err := wb.Delete(key(i)); err != nil {
			wb.Cancel()
			return err
		}
	}
	return wb.Flush()
}

// noteDeleted counts deleted bytes and starts a reclaim once gc_after
// bytes were deleted.
func (t *Tier) noteDeleted(bytes int64) {
	if t.deletedSince.Add(bytes) >= t.gcAfter {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// isChecksumErr reports whether Badger found bad bytes on disk.
func isChecksumErr(err error) bool {
	return errors.Is(err, y.ErrChecksumMismatch) || strings.Contains(err.Error(), "checksum")
}

// badgerErr wraps an error from Badger in the sentinel that fits it.
func badgerErr(op string, id backend.ID, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backend.Errorf(op, Name, id, err, "")
	case errors.Is(err, badger.ErrDBClosed):
		return backend.Errorf(op, Name, id, backend.ErrClosed, "")
	case isChecksumErr(err):
		return backend.Errorf(op, Name, id, backend.ErrCorrupt, "badger: %v", err)
	}
	var be *backend.Error
	if errors.As(err, &be) {
		return err
	}
	return backend.Errorf(op, Name, id, backend.ErrUnavailable, "badger: %v", err)
}
