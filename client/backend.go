package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"distore/backend"
	"distore/levels"
)

// Backend is a distore server seen as a backend.Backend, through a Client:
// what a program written against the Backend contract needs to run against
// a remote server (and how the conformance suite checks the wire).
type Backend struct {
	c      *Client
	level  atomic.Uint32
	closed atomic.Bool

	// cut holds the IDs of writes this backend cut off mid-body, and when.
	// The server releases such an ID when it sees the connection end,
	// which may be after the next request for it arrives: a put of a cut
	// ID that finds it taken waits a little for that (see retryCut).
	mu  sync.Mutex
	cut map[backend.ID]time.Time
}

// cutWait bounds how long a put waits for the server to release an ID
// whose write this backend cut off.
const cutWait = 2 * time.Second

// markCut records that a write of id was cut off.
func (b *Backend) markCut(id backend.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut == nil {
		b.cut = map[backend.ID]time.Time{}
	}
	now := time.Now()
	for k, t := range b.cut {
		if now.Sub(t) > cutWait {
			delete(b.cut, k)
		}
	}
	b.cut[id] = now
}

// retryCut runs put again while it fails with ErrExists for an ID whose
// write this backend cut off less than cutWait ago.
func (b *Backend) retryCut(ctx context.Context, id backend.ID, put func() error) error {
	for {
		err := put()
		if !errors.Is(err, backend.ErrExists) {
			return err
		}
		b.mu.Lock()
		t, ok := b.cut[id]
		b.mu.Unlock()
		if !ok || time.Since(t) > cutWait {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// NewBackend returns c as a backend.Backend. Setup checks that the server
// answers; Teardown closes the client's idle connections, not the server.
func NewBackend(c *Client) *Backend { return &Backend{c: c} }

var _ backend.Backend = (*Backend)(nil)

// check fails with ErrClosed after Teardown.
func (b *Backend) check(op string, id backend.ID) error {
	if b.closed.Load() {
		if id == "" {
			return fmt.Errorf("distore client: %s on %s: %w", op, b.c.base, backend.ErrClosed)
		}
		return fmt.Errorf("distore client: %s %q on %s: %w", op, string(id), b.c.base, backend.ErrClosed)
	}
	return nil
}

// Setup checks the server's health and learns its levels.
func (b *Backend) Setup(ctx context.Context) error {
	if err := b.check("setup", ""); err != nil {
		return err
	}
	if err := b.c.Health(ctx); err != nil {
		return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
	}
	st, err := b.c.Stats(ctx)
	if err != nil {
		return err
	}
	b.level.Store(uint32(st.Level))
	return nil
}

// Teardown closes idle connections; every method then fails with ErrClosed.
func (b *Backend) Teardown(context.Context) error {
	if b.closed.Swap(true) {
		return b.check("teardown", "")
	}
	b.c.Close()
	return nil
}

// Level is the server's levels, as Setup learnt them.
func (b *Backend) Level() levels.Level { return levels.Level(b.level.Load()) }

func putOpts(id backend.ID, o backend.PutOptions) PutOptions {
	return PutOptions{ID: id, Importance: o.Importance, Checksum: o.Checksum, Created: o.Created}
}

// Put stores data under id (an ID is required, as for every backend).
func (b *Backend) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := b.check("put", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	if err := checkID("put", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	var info backend.ObjectInfo
	err := b.retryCut(ctx, id, func() (err error) {
		info, err = b.c.Put(ctx, data, putOpts(id, opts))
		return err
	})
	return info, err
}

// Get reads the whole object into memory of its own.
func (b *Backend) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	if err := b.check("get", id); err != nil {
		return nil, err
	}
	r, err := b.c.getReader(ctx, id, 0, -1, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data := make([]byte, r.size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, opError("get", id, err)
	}
	return &object{Reader: bytes.NewReader(data), data: data, info: r.info}, nil
}

// object is a Get's result: the bytes are the client's own copy.
type object struct {
	*bytes.Reader
	data []byte
	info backend.ObjectInfo
}

func (o *object) Info() backend.ObjectInfo { return o.info }
func (o *object) Bytes() []byte            { return o.data }
func (o *object) Close() error             { return nil }

// Delete removes the object.
func (b *Backend) Delete(ctx context.Context, id backend.ID) error {
	if err := b.check("delete", id); err != nil {
		return err
	}
	return b.c.Delete(ctx, id)
}

// ObjectInfo is a HEAD.
func (b *Backend) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	if err := b.check("info", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	return b.c.Info(ctx, id)
}

// OpenReader streams a range; the reader's Info is the object's.
func (b *Backend) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	if err := b.check("open reader", id); err != nil {
		return nil, err
	}
	r, err := b.c.getReader(ctx, id, offset, length, true)
	if err != nil {
		return nil, err
	}
	return &rangeReader{Reader: r}, nil
}

// rangeReader turns a body that ends early into io.ErrUnexpectedEOF.
type rangeReader struct {
	*Reader
	got int64
}

func (r *rangeReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	r.got += int64(n)
	if err == io.EOF && r.got < r.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// OpenWriter streams a put of exactly size bytes: the bytes written go into
// the request body as they come; Close waits for the server's answer.
func (b *Backend) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	if err := b.check("open writer", id); err != nil {
		return nil, err
	}
	if err := checkID("put", id); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opError("put", id, err)
	}
	if size < 0 {
		return nil, fmt.Errorf("distore client: put %q: %w: size %d is negative", string(id), backend.ErrInvalidArgument, size)
	}
	pr, pw := io.Pipe()
	w := &writer{ctx: ctx, id: id, size: size, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_, w.err = b.c.PutReader(ctx, pr, size, putOpts(id, opts))
		pr.CloseWithError(errAborted) // a Write after the put ended fails
		if w.err != nil {
			b.markCut(id)
		}
	}()
	return w, nil
}

var errAborted = errors.New("write aborted")

// writer is OpenWriter's: a pipe into a PutReader running in a goroutine.
// It holds the body's last byte back until Close: the server publishes the
// object when the last byte arrives, and a write whose context was
// cancelled meanwhile must leave nothing.
type writer struct {
	ctx     context.Context
	id      backend.ID
	last    []byte // the held-back last byte, once written
	size    int64
	written int64
	pw      *io.PipeWriter
	done    chan struct{}
	err     error // the put's, once done is closed
	once    sync.Once
	result  error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.written+int64(len(p)) > w.size {
		return 0, fmt.Errorf("distore client: put %q: %w: writing %d bytes past the declared %d", string(w.id),
			backend.ErrInvalidArgument, w.written+int64(len(p))-w.size, w.size)
	}
	if err := w.ctx.Err(); err != nil {
		w.Abort()
		return 0, opError("put", w.id, err)
	}
	send := p
	if len(p) > 0 && w.written+int64(len(p)) == w.size {
		send, w.last = p[:len(p)-1], []byte{p[len(p)-1]}
	}
	n, err := w.pw.Write(send)
	w.written += int64(n)
	if err != nil {
		<-w.done
		if w.err != nil {
			return n, w.err
		}
		return n, opError("put", w.id, err)
	}
	w.written += int64(len(w.last))
	return len(p), nil
}

// Close sends the last byte, if the context is still live, and returns the
// put's result; with fewer bytes than declared the put fails and nothing is
// stored.
func (w *writer) Close() error {
	w.once.Do(func() {
		if w.written < w.size {
			w.pw.CloseWithError(io.ErrUnexpectedEOF)
			<-w.done
			w.result = fmt.Errorf("distore client: put %q: %w: %d of %d bytes written; nothing stored",
				string(w.id), backend.ErrInvalidArgument, w.written, w.size)
			return
		}
		if err := w.ctx.Err(); err != nil {
			w.pw.CloseWithError(err)
			<-w.done
			w.result = opError("put", w.id, err)
			return
		}
		if len(w.last) > 0 { // an empty object has no body to finish
			if _, err := w.pw.Write(w.last); err != nil {
				<-w.done
				w.result = w.err
				if w.result == nil {
					w.result = opError("put", w.id, err)
				}
				return
			}
		}
		w.pw.Close()
		<-w.done
		w.result = w.err
	})
	return w.result
}

// Abort fails the body: the server sees it cut short and stores nothing.
func (w *writer) Abort() error {
	w.once.Do(func() {
		w.pw.CloseWithError(errAborted)
		<-w.done
		w.result = fmt.Errorf("distore client: put %q: %w", string(w.id), errAborted)
	})
	return nil
}

// List returns one page of objects.
func (b *Backend) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	if err := b.check("list", ""); err != nil {
		return nil, err
	}
	page, err := b.c.List(ctx, opts)
	return page.Objects, err
}

// Pin pins the object on the server.
func (b *Backend) Pin(ctx context.Context, id backend.ID) error {
	if err := b.check("pin", id); err != nil {
		return err
	}
	return b.c.Pin(ctx, id)
}

// Unpin unpins the object on the server.
func (b *Backend) Unpin(ctx context.Context, id backend.ID) error {
	if err := b.check("unpin", id); err != nil {
		return err
	}
	return b.c.Unpin(ctx, id)
}

// Prefetch asks the server to make the object ready in its fastest tier.
func (b *Backend) Prefetch(ctx context.Context, id backend.ID) error {
	if err := b.check("prefetch", id); err != nil {
		return err
	}
	return b.c.Prefetch(ctx, id)
}

// Stats are the server's.
func (b *Backend) Stats(ctx context.Context) (backend.Stats, error) {
	if err := b.check("stats", ""); err != nil {
		return backend.Stats{}, err
	}
	return b.c.Stats(ctx)
}
