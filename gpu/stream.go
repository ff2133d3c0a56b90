package gpu

import (
	"context"
	"io"
	"sync"
	"time"

	"distore/backend"
)

// readerBuf is the pinned buffer a reader copies ranges of the object into.
const readerBuf = 4 << 20

// OpenReader streams length bytes from offset (-1: to the end), copying only
// that range from device memory, a few MiB at a time.
func (t *Tier) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	const op = "read"
	e, err := t.lookup(ctx, op, id, true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	size, dptr := e.info.Size, t.devPtr(e)
	e.info.Accessed = time.Now()
	info := e.info
	t.mu.Unlock()
	r := &reader{t: t, e: e, ctx: ctx, id: id, info: info}
	n, err := backend.CheckRange(op, Name, id, offset, length, size)
	if err == nil && n > 0 {
		r.buf, r.free, err = t.hostBuf(min(n, readerBuf))
		err = wrap(op, id, err)
	}
	if err != nil {
		r.free = nil
		r.Close()
		return nil, err
	}
	r.src, r.left = dptr+uintptr(offset), n
	return r, nil
}

type reader struct {
	t    *Tier
	e    *entry
	ctx  context.Context
	id   backend.ID
	info backend.ObjectInfo
	src  uintptr // device address of the next byte not yet in buf
	left int64   // bytes not yet copied into buf
	buf  []byte
	pos  []byte // the part of buf not yet read
	free func()

	mu     sync.Mutex
	closed bool
}

// Info is the object's metadata as OpenReader found it.
func (r *reader) Info() backend.ObjectInfo { return r.info }

func (r *reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, backend.Errorf("read", Name, r.id, backend.ErrClosed, "reader closed")
	}
	if len(r.pos) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			return 0, backend.Errorf("read", Name, r.id, err, "")
		}
		n := min(r.left, int64(len(r.buf)))
		if err := r.t.dev.CopyDtoH(r.buf[:n], r.src); err != nil {
			return 0, wrap("read", r.id, err)
		}
		r.pos, r.src, r.left = r.buf[:n], r.src+uintptr(n), r.left-n
	}
	n := copy(p, r.pos)
	r.pos = r.pos[n:]
	return n, nil
}

func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.free != nil {
		r.free()
	}
	r.t.mu.Lock()
	r.t.unrefLocked(r.e)
	r.t.mu.Unlock()
	r.t.release()
	return nil
}

// writerBuf gathers small writes before they are staged to the device.
const writerBuf = 4 << 20

// OpenWriter reserves size bytes of device memory at once (so ErrFull comes
// now, not at Close) and streams the writes into it through the staging
// lanes. Close publishes the object if exactly size bytes were written and ctx
// is live.
func (t *Tier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	r, err := t.reserve(ctx, "write", id, size)
	if err != nil {
		return nil, err
	}
	return &writer{t: t, ctx: ctx, r: r, opts: opts}, nil
}

type writer struct {
	t    *Tier
	ctx  context.Context
	r    reservation
	opts backend.PutOptions

	mu      sync.Mutex
	buf     []byte // writes not yet uploaded
	written int64  // bytes accepted
	flushed int64  // bytes uploaded
	crc     uint32 // of the uploaded bytes
	err     error  // the first failure; the writer only discards after it
	done    bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	const op = "write"
	switch {
	case w.done:
		return 0, backend.Errorf(op, Name, w.r.id, backend.ErrClosed, "writer closed")
	case w.err != nil:
		return 0, w.err
	case int64(len(p)) > w.r.size-w.written:
		w.err = backend.Errorf(op, Name, w.r.id, backend.ErrInvalidArgument,
			"write of %d bytes at %d goes past the declared size %d", len(p), w.written, w.r.size)
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.err = backend.Errorf(op, Name, w.r.id, err, "")
		return 0, w.err
	}
	n := len(p)
	if len(w.buf) == 0 && len(p) >= writerBuf {
		// A large write goes straight to staging.
		if err := w.upload(p); err != nil {
			return 0, err
		}
		w.written += int64(n)
		return n, nil
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, min(w.r.size, writerBuf))
	}
	for len(p) > 0 {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+k], p[k:]
		w.written += int64(k)
		if len(w.buf) == cap(w.buf) {
			if err := w.upload(w.buf); err != nil {
				return n - len(p), err
			}
			w.buf = w.buf[:0]
		}
	}
	return n, nil
}

// upload sends p to the device after the bytes already there; w.mu held.
func (w *writer) upload(p []byte) error {
	crc, err := w.t.upload(w.ctx, w.r.dptr+uintptr(w.flushed), p)
	if err != nil {
		w.err = wrap("write", w.r.id, err)
		return w.err
	}
	w.crc = backend.CombineChecksum(w.crc, crc, int64(len(p)))
	w.flushed += int64(len(p))
	return nil
}

func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	const op = "write"
	if w.done {
		return w.err
	}
	w.done = true
	if w.err == nil && len(w.buf) > 0 {
		w.upload(w.buf)
	}
	if w.err == nil {
		if err := w.ctx.Err(); err != nil {
			w.err = backend.Errorf(op, Name, w.r.id, err, "context ended before Close")
		} else if w.written != w.r.size {
			w.err = backend.Errorf(op, Name, w.r.id, backend.ErrInvalidArgument,
				"%d bytes written of the declared %d", w.written, w.r.size)
		} else {
			w.err = verify(op, w.r.id, w.crc, w.opts)
		}
	}
	w.buf = nil
	if w.err != nil {
		w.t.unreserve(w.r)
		return w.err
	}
	_, w.err = w.t.commit(op, w.r, w.crc, w.opts)
	return w.err
}

func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.buf = nil
	w.t.unreserve(w.r)
	return nil
}
