package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"distore/backend"
	"distore/internal/crc32c"
)

// startRead marks a read of the live object id: its chunks stay until
// endRead, even if the object is deleted meanwhile.
func (t *Tier) startRead(op string, id backend.ID) (*object, backend.ObjectInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, err := t.lookup(op, id)
	if err != nil {
		return nil, backend.ObjectInfo{}, err
	}
	o.readers++
	o.accessed = time.Now()
	return o, o.info(), nil
}

func (t *Tier) endRead(o *object) {
	t.mu.Lock()
	o.readers--
	drop := o.readers == 0 && o.dropped
	t.mu.Unlock()
	if drop {
		t.dropChunks(o)
	}
}

// corrupt is the error for bad bytes of chunk idx of object o.
func corrupt(op string, o *object, idx int, format string, args ...any) error {
	return backend.Errorf(op, Name, o.id, backend.ErrCorrupt, "chunk %d of %d: %s", idx, o.nchunks(), fmt.Sprintf(format, args...))
}

// readChunk copies bytes [from, from+len(dst)) of chunk idx of o into dst
// and verifies the whole chunk's CRC-32C, the copied part in the same pass
// as the copy: a reader of part of a chunk copies only that part.
func (t *Tier) readChunk(db *badger.DB, op string, o *object, idx int, from int64, dst []byte) (err error) {
	t.chunkReads.Add(1)
	defer func() {
		// Badger decodes value-log headers without bounds checks; bytes
		// damaged there must be an error, not a crash.
		if r := recover(); r != nil {
			err = corrupt(op, o, idx, "badger failed reading it: %v", r)
		}
	}()
	err = db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(chunkKey(o.token, uint32(idx)))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return corrupt(op, o, idx, "missing")
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if want := chunkLen(o.size, o.chunkSize, idx); int64(len(v)) != want {
				return corrupt(op, o, idx, "%d bytes stored, want %d", len(v), want)
			}
			to := from + int64(len(dst))
			if from < 0 || to > int64(len(v)) {
				return backend.Errorf(op, Name, o.id, backend.ErrInvalidArgument, "bytes [%d, %d) of chunk %d of %d bytes", from, to, idx, len(v))
			}
			willNeed(v)
			crc := crc32c.Update(0, v[:from])
			_, crc = crc32c.CopyUpdate(crc, dst, v[from:to])
			if crc = crc32c.Update(crc, v[to:]); crc != o.crcs[idx] {
				return corrupt(op, o, idx, "checksum %08x, want %08x", crc, o.crcs[idx])
			}
			return nil
		})
	})
	if err == nil {
		return nil
	}
	var be *backend.Error
	if errors.As(err, &be) {
		return err
	}
	if isChecksumErr(err) || !errors.Is(err, badger.ErrDBClosed) {
		// A pointer Badger cannot follow or bytes it rejects: the chunk is bad.
		return corrupt(op, o, idx, "badger: %v", err)
	}
	return badgerErr(op, o.id, err)
}

// Get reads the whole object into a heap buffer, readParallel chunks at a
// time, verifying every chunk and then the object's checksum.
func (t *Tier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	const op = "get"
	o, info, err := t.startRead(op, id)
	if err != nil {
		return nil, err
	}
	defer t.endRead(o)
	db, err := t.acquire(op, id)
	if err != nil {
		return nil, err
	}
	defer t.release()
	buf := make([]byte, o.size)
	n := o.nchunks()
	cs := o.chunkSize
	var next atomic.Int64
	var first error
	var once sync.Once
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			err := ctx.Err()
			if err != nil {
				err = backend.Errorf(op, Name, id, err, "")
			} else {
				err = t.readChunk(db, op, o, i, 0, buf[int64(i)*cs:int64(i)*cs+chunkLen(o.size, cs, i)])
			}
			if err != nil {
				once.Do(func() { first = err })
				next.Store(int64(n)) // stop the others
				return
			}
		}
	}
	if workers := min(readParallel, n); workers > 1 {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(work)
		}
		wg.Wait()
	} else {
		work()
	}
	if first != nil {
		return nil, first
	}
	if sum := t.objectChecksum(o); sum != o.checksum {
		return nil, backend.Errorf(op, Name, id, backend.ErrCorrupt,
			"chunks verify but the object's checksum is %08x, manifest says %08x", sum, o.checksum)
	}
	return backend.NewBytesObject(info, buf, nil), nil
}

// objectChecksum combines the chunks' CRC-32Cs into the object's.
func (t *Tier) objectChecksum(o *object) uint32 {
	var sum uint32
	for i, c := range o.crcs {
		sum = backend.CombineChecksum(sum, c, chunkLen(o.size, o.chunkSize, i))
	}
	return sum
}

// OpenReader streams a range of the object, reading (and verifying) only the
// chunks the range covers, one at a time.
func (t *Tier) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	const op = "read"
	o, info, err := t.startRead(op, id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange(op, Name, id, offset, length, o.size)
	if err != nil {
		t.endRead(o)
		return nil, err
	}
	return &reader{t: t, ctx: ctx, o: o, info: info, pos: offset, end: offset + n, idx: -1}, nil
}

type reader struct {
	t        *Tier
	ctx      context.Context
	o        *object
	info     backend.ObjectInfo
	pos, end int64
	buf      []byte // chunk idx
	idx      int
	closed   bool
}

func (r *reader) Read(p []byte) (int, error) {
	const op = "read"
	if r.closed {
		return 0, backend.Errorf(op, Name, r.o.id, backend.ErrInvalidArgument, "reader is closed")
	}
	if r.pos >= r.end {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := r.ctx.Err(); err != nil {
		return 0, backend.Errorf(op, Name, r.o.id, err, "")
	}
	cs := r.o.chunkSize
	idx := int(r.pos / cs)
	if idx != r.idx {
		n := chunkLen(r.o.size, cs, idx)
		base := int64(idx) * cs
		// All this reader reads of the chunk fits p: copy it there directly
		// (a ranged read then copies only its bytes, with no chunk buffer).
		if stop := min(base+n, r.end); int64(len(p)) >= stop-r.pos {
			db, err := r.t.acquire(op, r.o.id)
			if err != nil {
				return 0, err
			}
			k := int(stop - r.pos)
			err = r.t.readChunk(db, op, r.o, idx, r.pos-base, p[:k])
			r.t.release()
			if err != nil {
				return 0, err
			}
			r.pos = stop
			return k, nil
		}
		if int64(cap(r.buf)) < n {
			r.buf = make([]byte, n)
		}
		r.buf = r.buf[:n]
		db, err := r.t.acquire(op, r.o.id)
		if err != nil {
			return 0, err
		}
		err = r.t.readChunk(db, op, r.o, idx, 0, r.buf)
		r.t.release()
		if err != nil {
			r.idx = -1
			return 0, err
		}
		r.idx = idx
	}
	start := r.pos - int64(idx)*cs
	stop := min(int64(len(r.buf)), r.end-int64(idx)*cs)
	k := copy(p, r.buf[start:stop])
	r.pos += int64(k)
	return k, nil
}

// Info is the object's metadata as OpenReader found it.
func (r *reader) Info() backend.ObjectInfo { return r.info }

func (r *reader) Close() error {
	if !r.closed {
		r.closed = true
		r.buf = nil
		r.t.endRead(r.o)
	}
	return nil
}

// willNeedMin is the smallest value worth a madvise call.
const willNeedMin = 64 << 10

// willNeed asks the kernel to read v (a value in Badger's mapped value log)
// in at once. Without it a cold read faults the chunk in one read-around
// window (128 KiB) at a time, each fault a synchronous disk read; with it
// the whole chunk is one large read, so the copy that follows mostly finds
// its pages present.
func willNeed(v []byte) {
	if len(v) < willNeedMin {
		return
	}
	data := unsafe.Pointer(unsafe.SliceData(v))
	off := int(uintptr(data) & uintptr(pageSize-1)) // madvise wants a page-aligned start
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(data, -off)), off+len(v)), unix.MADV_WILLNEED)
}

var pageSize = os.Getpagesize()
