package disk

import (
	"github.com/dgraph-io/badger/v4"

	"distore/backend"
)

// Group commit. Badger syncs its memtable WAL once per transaction, not once
// per batch of transactions, so with sync on, n concurrent small Puts would
// cost n fsyncs. Small commits therefore go through one goroutine that merges
// whatever is waiting into a single transaction: one commit, one value-log
// write and one WAL sync for the lot.
const (
	groupMaxEntries = 1024    // keeps a merged transaction far below Badger's batch limits
	groupMaxBytes   = 4 << 20 // larger commits go straight to Badger
	groupInFlight   = 4       // merged transactions in flight at once
)

type groupReq struct {
	fn      func(*badger.Txn) error
	entries int
	done    chan error
}

// committer merges and commits the requests sent on reqs until reqs is
// closed (by Teardown, once no caller can send), then waits for its last
// commits.
func (t *Tier) committer(db *badger.DB, reqs <-chan *groupReq, done chan<- struct{}) {
	defer close(done)
	inflight := make(chan struct{}, groupInFlight)
	for r := range reqs {
		batch := []*groupReq{r}
		n := r.entries
	collect:
		for n < groupMaxEntries {
			select {
			case r2, ok := <-reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r2)
				n += r2.entries
			default:
				break collect
			}
		}
		inflight <- struct{}{}
		finish := func(err error) {
			for _, r := range batch {
				r.done <- err
			}
			<-inflight
		}
		txn := db.NewTransaction(true)
		var err error
		for _, r := range batch {
			if err = r.fn(txn); err != nil {
				break
			}
		}
		if err != nil {
			// Only a malformed entry or a transaction over Badger's limits can
			// fail here; nothing of the batch is committed.
			txn.Discard()
			finish(err)
			continue
		}
		t.commitMu.RLock()
		txn.CommitWith(finish)
		t.commitMu.RUnlock()
	}
	for range groupInFlight {
		inflight <- struct{}{}
	}
}

// commit runs fn (which makes about entries changes of about bytes value
// bytes) in a write transaction and commits it: through the group committer
// when it is small, else in a transaction of its own.
func (t *Tier) commit(op string, id backend.ID, entries int, bytes int64, fn func(*badger.Txn) error) error {
	db, err := t.acquire(op, id)
	if err != nil {
		return err
	}
	defer t.release()
	if entries <= groupMaxEntries && bytes <= groupMaxBytes {
		r := &groupReq{fn: fn, entries: entries, done: make(chan error, 1)}
		t.group <- r // Teardown closes t.group only once no caller holds acquire
		if err := <-r.done; err != nil {
			return badgerErr(op, id, err)
		}
		t.noteWritten(bytes)
		return nil
	}
	t.commitMu.RLock()
	defer t.commitMu.RUnlock()
	txn := db.NewTransaction(true)
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return badgerErr(op, id, err)
	}
	if err := txn.Commit(); err != nil {
		return badgerErr(op, id, err)
	}
	t.noteWritten(bytes)
	return nil
}
