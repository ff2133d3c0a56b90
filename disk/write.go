package disk

import (
	"context"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"distore/backend"
)

// Put stores data under id without copying it first: objects up to 4 MiB
// are one transaction with their manifest; larger ones are pipelined commits
// of 4 MiB groups of chunks followed by one transaction holding the last
// group and the manifest. The object is visible, and Put returns, only after
// that last commit.
func (t *Tier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	const op = "put"
	size := int64(len(data))
	cs := t.chunkSize
	n := numChunks(size, cs)
	chunk := func(i int) []byte { return data[int64(i)*cs : int64(i)*cs+chunkLen(size, cs, i)] }
	crcs := make([]uint32, n)
	var sum uint32
	for i := range n {
		c := chunk(i)
		crcs[i] = backend.Checksum(c)
		sum = backend.CombineChecksum(sum, crcs[i], int64(len(c)))
	}
	if opts.Checksum != 0 && sum != opts.Checksum {
		return backend.ObjectInfo{}, backend.Errorf(op, Name, id, backend.ErrCorrupt,
			"data has checksum %08x, caller expects %08x; nothing stored", sum, opts.Checksum)
	}
	o, err := t.reserve(op, id, size)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	o.importance, o.created, o.checksum, o.crcs = opts.Importance, createdAt(opts.Created), sum, crcs

	// Chunks are committed in groups of putGroup bytes, each one transaction
	// (one value-log write and, with sync, one fsync); all groups but the last
	// are committed ahead, pipelined, and the last goes with the manifest.
	per := max(int(putGroup/cs), 1)
	s := t.newSink(ctx, op, o, putDepth)
	last := max(n-per, 0)
	for g := 0; g < last && err == nil; g += per {
		group := make([][]byte, 0, per)
		for i := g; i < min(g+per, last); i++ {
			group = append(group, chunk(i))
		}
		err = s.submit(group, nil)
	}
	if werr := s.wait(); err == nil {
		err = werr
	}
	if err == nil {
		err = t.commitManifest(ctx, op, o, n-last, size-int64(last)*cs, func(txn *badger.Txn) error {
			for i := last; i < n; i++ {
				if err := txn.SetEntry(badger.NewEntry(chunkKey(o.token, uint32(i)), chunk(i))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		t.discard(o, s.submitted())
		return backend.ObjectInfo{}, err
	}
	return t.publish(o), nil
}

func createdAt(c time.Time) time.Time {
	if c.IsZero() {
		c = time.Now()
	}
	return time.Unix(0, c.UnixNano()) // what a reload returns: no monotonic reading
}

// commitManifest checks ctx, then commits the manifest of o together with
// whatever extra sets (the last chunks). It is the write's commit point.
// extra makes entries changes of bytes value bytes.
func (t *Tier) commitManifest(ctx context.Context, op string, o *object, entries int, bytes int64, extra func(*badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, Name, o.id, err, "")
	}
	return t.commit(op, o.id, entries+1, bytes, func(txn *badger.Txn) error {
		if err := extra(txn); err != nil {
			return err
		}
		return txn.Set(manifestKey(o.id), o.manifest.encode())
	})
}

// discard cleans up a write that did not commit: its first n chunks (and the
// manifest, in case a failed commit reached the disk) and its reservation.
func (t *Tier) discard(o *object, n int) {
	_ = t.commit("discard", o.id, 1, 0, func(txn *badger.Txn) error { return txn.Delete(manifestKey(o.id)) })
	t.dropChunkKeys(o.id, o.token, n, int64(n)*t.chunkSize)
	t.unreserve(o)
}

// sink commits the chunks of one write asynchronously, a bounded number of
// commits at a time, so checksums and copies overlap Badger's writes.
type sink struct {
	t     *Tier
	ctx   context.Context
	op    string
	o     *object
	slots chan struct{}
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error
	n   int // chunks submitted
}

func (t *Tier) newSink(ctx context.Context, op string, o *object, depth int) *sink {
	return &sink{t: t, ctx: ctx, op: op, o: o, slots: make(chan struct{}, depth)}
}

func (s *sink) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *sink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *sink) submitted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// submit commits the next chunks, vals, in one transaction. vals must not
// change until done is called (done may be nil); done is always called.
func (s *sink) submit(vals [][]byte, done func()) error {
	finish := func() {
		if done != nil {
			done()
		}
	}
	if err := s.failed(); err != nil {
		finish()
		return err
	}
	if err := s.ctx.Err(); err != nil {
		finish()
		return backend.Errorf(s.op, Name, s.o.id, err, "")
	}
	s.slots <- struct{}{} // freed by the commit callback, which always comes
	db, err := s.t.acquire(s.op, s.o.id)
	if err != nil {
		<-s.slots
		finish()
		return err
	}
	s.mu.Lock()
	idx := uint32(s.n)
	s.n += len(vals)
	s.mu.Unlock()
	s.wg.Add(1)
	callback := func(err error) {
		if err != nil {
			s.fail(badgerErr(s.op, s.o.id, err))
		}
		finish()
		s.t.release()
		<-s.slots
		s.wg.Done()
	}
	s.t.commitMu.RLock()
	defer s.t.commitMu.RUnlock()
	txn := db.NewTransaction(true)
	for i, val := range vals {
		if err := txn.SetEntry(badger.NewEntry(chunkKey(s.o.token, idx+uint32(i)), val)); err != nil {
			txn.Discard()
			callback(err)
			return s.failed()
		}
	}
	txn.CommitWith(callback)
	var n int64
	for _, v := range vals {
		n += int64(len(v))
	}
	s.t.noteWritten(n)
	return nil
}

// wait waits for every submitted commit and returns the first error.
func (s *sink) wait() error {
	s.wg.Wait()
	return s.failed()
}

// OpenWriter starts a streamed write of size bytes. It holds at most
// writeDepth chunk buffers (8 MiB with the default chunk size) whatever the
// object's size: full chunks are committed while the caller writes on.
func (t *Tier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	const op = "write"
	o, err := t.reserve(op, id, size)
	if err != nil {
		return nil, err
	}
	o.importance, o.created = opts.Importance, createdAt(opts.Created)
	o.crcs = make([]uint32, 0, numChunks(size, t.chunkSize))
	w := &writer{t: t, ctx: ctx, o: o, want: opts.Checksum, s: t.newSink(ctx, op, o, writeDepth),
		free: make(chan []byte, writeDepth)}
	return w, nil
}

type writer struct {
	t    *Tier
	ctx  context.Context
	o    *object
	want uint32 // PutOptions.Checksum
	s    *sink

	buf     []byte // the chunk being filled
	crc     uint32 // CRC-32C of buf
	free    chan []byte
	bufs    int // buffers allocated, at most writeDepth
	written int64
	sum     uint32
	err     error // sticky: the write has failed
	done    bool
	result  error
}

func (w *writer) getBuf() []byte {
	select {
	case b := <-w.free:
		return b
	default:
	}
	if w.bufs < writeDepth {
		w.bufs++
		return make([]byte, 0, min(w.t.chunkSize, w.o.size))
	}
	return <-w.free // a commit callback always returns its buffer
}

// Write copies p into chunk buffers and commits each full chunk.
func (w *writer) Write(p []byte) (int, error) {
	const op = "write"
	switch {
	case w.done:
		return 0, backend.Errorf(op, Name, w.o.id, backend.ErrInvalidArgument, "writer is closed")
	case w.err != nil:
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = backend.Errorf(op, Name, w.o.id, err, "")
		return 0, w.err
	}
	if int64(len(p)) > w.o.size-w.written {
		w.err = backend.Errorf(op, Name, w.o.id, backend.ErrInvalidArgument,
			"writing %d bytes after %d overruns the declared size %d", len(p), w.written, w.o.size)
		return 0, w.err
	}
	total := len(p)
	cs := w.t.chunkSize
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = w.getBuf()
		}
		idx := len(w.o.crcs)
		want := int(chunkLen(w.o.size, cs, idx))
		k := min(want-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		w.crc = backend.UpdateChecksum(w.crc, p[:k])
		p = p[k:]
		w.written += int64(k)
		if len(w.buf) < want {
			continue
		}
		w.o.crcs = append(w.o.crcs, w.crc)
		w.sum = backend.CombineChecksum(w.sum, w.crc, int64(want))
		w.crc = 0
		if idx == numChunks(w.o.size, cs)-1 {
			break // the last chunk is committed with the manifest by Close
		}
		buf := w.buf
		w.buf = nil
		if err := w.s.submit([][]byte{buf}, func() { w.free <- buf[:0] }); err != nil {
			w.err = err
			return total - len(p), err
		}
	}
	return total, nil
}

// Close commits the object if exactly the declared size was written, the
// context is live and the checksum (if given) matches; else it discards it.
func (w *writer) Close() error {
	const op = "write"
	if w.done {
		return w.result
	}
	w.done = true
	err := w.err
	if err == nil && w.written != w.o.size {
		err = backend.Errorf(op, Name, w.o.id, backend.ErrInvalidArgument,
			"wrote %d bytes of the declared %d", w.written, w.o.size)
	}
	if werr := w.s.wait(); err == nil {
		err = werr
	}
	if err == nil && w.want != 0 && w.sum != w.want {
		err = backend.Errorf(op, Name, w.o.id, backend.ErrCorrupt,
			"data has checksum %08x, caller expects %08x; nothing stored", w.sum, w.want)
	}
	if err == nil {
		w.o.checksum = w.sum
		last := len(w.o.crcs) - 1
		err = w.t.commitManifest(w.ctx, op, w.o, 1, int64(len(w.buf)), func(txn *badger.Txn) error {
			if last < 0 {
				return nil
			}
			return txn.SetEntry(badger.NewEntry(chunkKey(w.o.token, uint32(last)), w.buf))
		})
	}
	w.buf = nil
	if err != nil {
		w.t.discard(w.o, w.s.submitted())
		w.result = err
		return err
	}
	w.t.publish(w.o)
	return nil
}

// Abort discards the write; after Close it does nothing.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.result = backend.Errorf("write", Name, w.o.id, backend.ErrInvalidArgument, "writer was aborted")
	_ = w.s.wait()
	w.t.discard(w.o, w.s.submitted())
	return nil
}
