package disk

import (
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// gcDiscardRatio: a value-log file is rewritten when at least this share of
// it is garbage.
const gcDiscardRatio = 0.5

// gcLoop runs the value-log GC every gcInterval, and a full reclaim when
// kicked (gc_after bytes deleted) or when the period finds deletes pending.
// Teardown waits for it to end before closing db, so it uses db directly.
func (t *Tier) gcLoop(db *badger.DB, stop <-chan struct{}, done chan<- struct{}, kick <-chan struct{}) {
	defer close(done)
	tick := time.NewTicker(t.gcInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-kick:
			t.reclaim(db, stop)
		case <-tick.C:
			if t.deletedSince.Load() > 0 {
				t.reclaim(db, stop)
			} else {
				t.vlogGC(db, stop)
			}
		}
	}
}

// reclaim gives the space of deleted chunks back to the file system. Badger
// learns that a value-log entry is garbage only when compaction drops its
// key's old version, so: flush the memtable (the deletes are usually still
// there), compact the LSM tree into one level (it holds only keys and
// pointers, so this is quick), then rewrite or remove value-log files that
// are mostly garbage.
func (t *Tier) reclaim(db *badger.DB, stop <-chan struct{}) {
	t.deletedSince.Store(0)
	start := time.Now()
	// Badger flushes memtables on DropPrefix, refusing commits meanwhile:
	// commitMu keeps our commits out for that moment.
	t.commitMu.Lock()
	err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte{kindFlush}, nil) })
	if err == nil {
		err = db.DropPrefix([]byte{kindFlush})
	}
	t.commitMu.Unlock()
	if err == nil {
		err = db.Flatten(1)
	}
	if err != nil {
		slog.Warn("disk tier: reclaim could not compact; value-log GC runs anyway", "tier", Name, "dir", t.dir, "err", err)
	}
	files := t.vlogGC(db, stop)
	slog.Debug("disk tier: reclaimed", "tier", Name, "dir", t.dir, "vlog_files", files, "took", time.Since(start))
}

// vlogGC rewrites value-log files while some is mostly garbage, and returns
// how many it rewrote. Badger's GC reads the memtable's version without the
// lock its writer updates it under (a data race in Badger v4.9.6), so each
// round runs with our commits held back and those already sent applied.
func (t *Tier) vlogGC(db *badger.DB, stop <-chan struct{}) int {
	for i := range 10000 {
		select {
		case <-stop:
			return i
		default:
		}
		t.commitMu.Lock()
		// A synchronous write returns only after every write sent before it
		// is in the memtable: the barrier the GC needs.
		err := db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte{kindFlush}) })
		if err == nil {
			err = db.RunValueLogGC(gcDiscardRatio)
		}
		t.commitMu.Unlock()
		if err != nil {
			return i // badger.ErrNoRewrite: nothing left worth rewriting
		}
	}
	return 10000
}
