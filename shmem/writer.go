package shmem

import (
	"context"
	"sync"
	"unsafe"

	"distore/backend"
)

// OpenWriter reserves size bytes in the mapping at once and returns a Writer
// that writes straight into them. Close publishes the object if exactly size
// bytes were written and ctx is live; Abort, a cancelled ctx or a wrong count
// give the space back. A full tier fails here, not half-way through the stream.
func (s *Store) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	const op = "write"
	s.mu.Lock()
	e, err := s.reserve(op, id, size)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	m := s.m
	m.acquire()
	s.mu.Unlock()
	w := &writer{s: s, m: m, e: e, id: id, ctx: ctx, opts: opts, dst: s.dataBytes(m, e)}
	// A cancelled context frees the space even if the caller never closes.
	w.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.done {
			w.err = backend.Errorf(op, Name, id, context.Cause(ctx), "write abandoned")
			w.discard()
		}
	})
	return w, nil
}

// writer is a streamed write into space reserved in the mapping.
type writer struct {
	s    *Store
	m    *mapping
	e    *entry
	id   backend.ID // e.id, for errors after the entry is published (and may be reused)
	ctx  context.Context
	opts backend.PutOptions
	stop func() bool

	mu   sync.Mutex // serializes Write with an abort from the context
	dst  []byte
	n    int64
	crc  uint32
	done bool  // discarded or published
	err  error // why the write failed, returned again by Write and Close
}

// Write copies p into the mapping, extending the checksum as it goes.
func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, backend.Errorf("write", Name, w.id, backend.ErrClosed, "writer already closed")
	}
	if err := w.ctx.Err(); err != nil {
		w.err = backend.Errorf("write", Name, w.id, err, "")
		w.discard()
		return 0, w.err
	}
	if int64(len(p)) > w.e.size-w.n {
		w.err = backend.Errorf("write", Name, w.id, backend.ErrInvalidArgument,
			"writing %d bytes at %d goes past the declared size %d", len(p), w.n, w.e.size)
		w.discard()
		return 0, w.err
	}
	d := w.dst[w.n : w.n+int64(len(p))]
	if len(p) > 0 && unsafe.SliceData(p) == unsafe.SliceData(d) {
		// The bytes are in place already (a local client wrote them into the
		// shared mapping, see PendingRegion): checksum them, copy nothing.
		w.crc = backend.CombineChecksum(w.crc, checksumParallel(d, w.s.threads), int64(len(p)))
	} else if len(p) >= parallelMin {
		w.crc = backend.CombineChecksum(w.crc, copyChecksum(d, p, w.s.threads), int64(len(p)))
	} else {
		// Blocks small enough that the checksum reads what the copy just cached.
		const block = 64 << 10
		for off := 0; off < len(p); off += block {
			end := min(off+block, len(p))
			copy(d[off:end], p[off:end])
			w.crc = backend.UpdateChecksum(w.crc, d[off:end])
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

// Close publishes the object, or discards it and says why.
func (w *writer) Close() error {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.done {
		return w.err
	}
	const op = "write"
	id := w.id
	switch {
	case w.ctx.Err() != nil:
		w.err = backend.Errorf(op, Name, id, w.ctx.Err(), "")
	case w.n != w.e.size:
		w.err = backend.Errorf(op, Name, id, backend.ErrInvalidArgument, "wrote %d of the declared %d bytes", w.n, w.e.size)
	case w.opts.Checksum != 0 && w.opts.Checksum != w.crc:
		w.err = backend.Errorf(op, Name, id, backend.ErrCorrupt, "checksum %08x, expected %08x", w.crc, w.opts.Checksum)
	}
	if w.err != nil {
		w.discard()
		return w.err
	}
	w.e.checksum = w.crc
	w.s.mu.Lock()
	err := w.s.publish(op, w.e, w.opts)
	if err != nil {
		w.s.unreserve(w.e)
	}
	w.s.mu.Unlock()
	w.done, w.err = true, err
	w.m.release()
	return err
}

// Abort discards the write; after Close it does nothing.
func (w *writer) Abort() error {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		if w.err == nil {
			w.err = backend.Errorf("write", Name, w.id, backend.ErrInvalidArgument, "write aborted")
		}
		w.discard()
	}
	return nil
}

// discard gives the reserved space back; w.mu is held.
func (w *writer) discard() {
	if w.done {
		return
	}
	w.done = true
	w.s.mu.Lock()
	w.s.unreserve(w.e)
	w.s.mu.Unlock()
	w.m.release()
}
