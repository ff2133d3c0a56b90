//go:build ceph

package ceph

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"distore/backend"
	"distore/levels"
	"distore/remote/internal/remoteobj"
)

// ObjectInfo returns the object's metadata from its xattr.
func (t *Tier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	const op = "info"
	if err := t.enter(op, id); err != nil {
		return backend.ObjectInfo{}, err
	}
	defer t.ops.Done()
	m, err := t.readMeta(op, id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return t.info(id, m), nil
}

// OpenReader streams a range, reading only the stripes that hold it, a chunk
// at a time with reads ahead; a whole-object read is checked against the
// CRC-32C at its end.
func (t *Tier) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	const op = "read"
	if err := t.enter(op, id); err != nil {
		return nil, err
	}
	defer t.ops.Done()
	m, err := t.readMeta(op, id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange(op, Name, id, offset, length, m.Size)
	if err != nil {
		return nil, err
	}
	r := &reader{t: t, ctx: ctx, id: id, m: m, pos: offset, end: offset + n,
		check: offset == 0 && n == m.Size, sum: backend.NewChecksum()}
	return r, nil
}

// reader is OpenReader's stream. It reads (concurrency × chunk_size) bytes
// ahead in one batch of concurrent reads and hands them out.
type reader struct {
	t        *Tier
	ctx      context.Context
	id       backend.ID
	m        meta
	pos, end int64 // next object offset to fetch, end of the range
	buf      []byte
	out      []byte // the part of buf not yet handed out
	check    bool
	sum      interface {
		io.Writer
		Sum32() uint32
	}
	err    error
	closed bool
}

// Info is the object's metadata, from the meta object read at open.
func (r *reader) Info() backend.ObjectInfo { return r.t.info(r.id, r.m) }

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, backend.Errorf("read", Name, r.id, backend.ErrClosed, "reader closed")
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.out) == 0 {
		if r.pos >= r.end {
			if r.check && r.sum.Sum32() != r.m.CRC {
				r.err = backend.Errorf("read", Name, r.id, backend.ErrCorrupt,
					"bytes read have CRC-32C %08x, metadata says %08x", r.sum.Sum32(), r.m.CRC)
				return 0, r.err
			}
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// fill reads the next batch.
func (r *reader) fill() error {
	t := r.t
	if err := r.ctx.Err(); err != nil {
		return backend.Errorf("read", Name, r.id, err, "")
	}
	n := min(r.end-r.pos, int64(t.opts.Concurrency)*t.opts.ChunkSize)
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if err := t.enter("read", r.id); err != nil {
		return err
	}
	defer t.ops.Done()
	if _, err := t.readInto(r.ctx, "read", r.id, r.m, r.pos, r.buf, false, 0); err != nil {
		return err
	}
	if r.check {
		r.sum.Write(r.buf)
	}
	r.pos += n
	r.out = r.buf
	return nil
}

func (r *reader) Close() error {
	r.closed, r.buf, r.out = true, nil, nil
	return nil
}

// Delete removes the object (its manifest first, so it vanishes at once,
// then its stripes) unless it is pinned.
func (t *Tier) Delete(ctx context.Context, id backend.ID) error {
	const op = "delete"
	if err := t.enter(op, id); err != nil {
		return err
	}
	defer t.ops.Done()
	unlock := t.idLocks.Lock(id)
	defer unlock()
	m, err := t.readMeta(op, id)
	if err != nil {
		return err
	}
	if err := t.ioctx.Delete(string(id)); err != nil {
		return t.wrap(op, id, err)
	}
	t.space.Removed(m.Size)
	t.removeStripes(id, m.Token, m.Stripes)
	return nil
}

// List reads the namespace's object names, sorts the IDs after opts.After
// with opts.Prefix, and reads the metadata of one page.
func (t *Tier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	const op = "list"
	if err := t.enter(op, ""); err != nil {
		return nil, err
	}
	defer t.ops.Done()
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	all, err := t.ids()
	if err != nil {
		return nil, t.wrap(op, "", err)
	}
	ids := all[:0]
	for _, id := range all {
		if strings.HasPrefix(string(id), opts.Prefix) && id > opts.After {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []backend.ObjectInfo
	// Objects deleted meanwhile drop out: read on until the page is full.
	for len(ids) > 0 && len(out) < limit {
		k := min(len(ids), limit-len(out))
		infos, err := t.infos(ctx, op, ids[:k])
		if err != nil {
			return nil, err
		}
		out = append(out, infos...)
		ids = ids[k:]
	}
	return out, nil
}

// Prefetch checks that the object exists.
func (t *Tier) Prefetch(ctx context.Context, id backend.ID) error {
	const op = "prefetch"
	if err := t.enter(op, id); err != nil {
		return err
	}
	defer t.ops.Done()
	_, err := t.readMeta(op, id)
	return err
}

// Stats reports the counters; Capacity is 0 when the tier is unbounded.
func (t *Tier) Stats(ctx context.Context) (backend.Stats, error) {
	if err := t.enter("stats", ""); err != nil {
		return backend.Stats{}, err
	}
	defer t.ops.Done()
	return t.space.Stats(levels.Remote), nil
}

// OpenWriter starts a streamed write. An object up to chunk_size is buffered
// and written by one atomic op at Close; a larger one is written chunk by
// chunk into its stripes, concurrency chunks in flight, and Close creates its
// manifest. Abort, a failed write or a cancelled context remove the stripes.
func (t *Tier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	const op = "write"
	if err := t.enter(op, id); err != nil {
		return nil, err
	}
	defer t.ops.Done()
	// A large write checks first that the ID is free rather than find out
	// after writing its stripes; a small one learns it from its exclusive
	// create at Close, without an extra round trip.
	if size > t.opts.ChunkSize {
		if err := t.exists(op, id); err != nil {
			return nil, err
		}
	}
	if err := t.space.Reserve(op, id, size); err != nil {
		return nil, err
	}
	w := &writer{Stream: remoteobj.NewStream(&t.space, id, size, opts), t: t, ctx: ctx,
		m: meta{Size: size, Importance: opts.Importance, Created: remoteobj.Created(opts).UTC().Format(time.RFC3339Nano),
			Token: string(backend.NewID()[:10])}}
	if size <= t.opts.ChunkSize {
		w.buf = make([]byte, 0, size)
	} else {
		w.m.Stripes = (size + t.opts.StripeSize - 1) / t.opts.StripeSize
		w.m.StripeSize = t.opts.StripeSize
		w.free = make(chan []byte, t.opts.Concurrency+1)
		w.results = make(chan error, t.opts.Concurrency+1)
	}
	return w, nil
}

// writer is OpenWriter's Writer, used by one goroutine; its chunk writes run
// in goroutines of their own.
type writer struct {
	remoteobj.Stream
	t         *Tier
	ctx       context.Context
	m         meta
	buf       []byte
	bufOff    int64 // object offset of buf[0]
	free      chan []byte
	allocated int
	inFlight  int
	results   chan error
	werr      error // the first chunk write's failure
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.Over(); err != nil {
		return 0, err
	}
	if err := w.Admit(w.ctx, w.t.closed.Load(), p); err != nil {
		return 0, w.fail(err)
	}
	if w.m.Stripes == 0 {
		w.buf = append(w.buf, p...)
		w.N += int64(len(p))
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			b, err := w.getBuf()
			if err != nil {
				return written, w.fail(err)
			}
			w.buf, w.bufOff = b, w.N
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, written, w.N = p[k:], written+k, w.N+int64(k)
		if len(w.buf) == cap(w.buf) || w.N == w.Size {
			w.send()
		}
	}
	return written, nil
}

// getBuf returns a chunk buffer: a new one while fewer than concurrency+1
// exist, else the next one a finished write gives back. The chunk ends at a
// stripe boundary, so each chunk is one RADOS write.
func (w *writer) getBuf() ([]byte, error) {
	var b []byte
	if w.allocated <= w.t.opts.Concurrency && len(w.free) == 0 {
		w.allocated++
		b = make([]byte, 0, w.t.opts.ChunkSize)
	} else {
		if err := w.reap(true); err != nil {
			return nil, err
		}
		b = <-w.free
	}
	return b[:0:min(int64(cap(b)), w.Size-w.N)], nil
}

// reap collects finished chunk writes (waiting for one if wait), returning
// the first failure.
func (w *writer) reap(wait bool) error {
	for w.inFlight > 0 {
		var err error
		if wait {
			err = <-w.results
			wait = false
		} else {
			select {
			case err = <-w.results:
			default:
				return w.werr
			}
		}
		w.inFlight--
		if err != nil && w.werr == nil {
			w.werr = w.t.wrap("write", w.ID, err)
		}
	}
	return w.werr
}

// send writes the buffered chunk into its stripe in the background.
func (w *writer) send() {
	b, off := w.buf, w.bufOff
	w.buf = nil
	s := off / w.m.StripeSize
	name := stripeName(w.ID, w.m.Token, s)
	w.inFlight++
	w.t.ops.Add(1)
	if w.t.closed.Load() { // Teardown started: the I/O context is going away
		w.t.ops.Done()
		w.free <- b
		w.results <- backend.Errorf("write", Name, w.ID, backend.ErrClosed, "")
		return
	}
	go func() {
		defer w.t.ops.Done()
		err := w.t.ioctx.Write(name, b, uint64(off-s*w.m.StripeSize))
		w.free <- b
		w.results <- err
	}()
}

// wait collects every chunk write in flight.
func (w *writer) wait() error {
	for w.inFlight > 0 {
		w.reap(true)
	}
	return w.werr
}

func (w *writer) fail(err error) error {
	w.Fail(err)
	w.discard()
	return err
}

// discard waits for the writes in flight and removes the stripes.
func (w *writer) discard() {
	if w.m.Stripes > 0 {
		w.wait()
		n := min(w.m.Stripes, w.N/w.m.StripeSize+1)
		// After Teardown the I/O context is gone: the stripes stay (invisible).
		if err := w.t.enter("write", w.ID); err != nil {
			slog.Warn("ceph: stripes of a failed write left behind", "tier", Name, "id", w.ID, "stripes", n, "err", err)
		} else {
			w.t.removeStripes(w.ID, w.m.Token, n)
			w.t.ops.Done()
		}
	}
	w.buf = nil
	w.Release()
}

// Close publishes the object if exactly size bytes were written and the
// context is live.
func (w *writer) Close() error { return w.Finish(w.commit, w.discard) }

func (w *writer) commit() error {
	const op = "write"
	t := w.t
	if err := w.wait(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return backend.Errorf(op, Name, w.ID, err, "")
	}
	crc, err := w.Verify()
	if err != nil {
		return err
	}
	w.m.CRC = crc
	if err := t.enter(op, w.ID); err != nil {
		return err
	}
	defer t.ops.Done()
	return t.publish(w.ctx, op, w.ID, w.m, w.buf)
}

// Abort discards the write; after Close it does nothing.
func (w *writer) Abort() error {
	w.Abandon(w.discard)
	return nil
}
