package server

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"distore/backend"
	"distore/levels"
)

// fakeBackend is a small map-backed Backend for the server's unit tests, so
// they do not depend on a tier's package. It keeps the contract's visible
// rules: IDs checked, sealed objects, counted pins, capacity with ErrFull and
// ErrTooLarge, streamed writers that publish on Close only.
type fakeBackend struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	objs     map[backend.ID]*fakeObj
	closed   bool
	level    levels.Level
}

type fakeObj struct {
	info backend.ObjectInfo
	data []byte
}

const fakeTier = "fake"

func newFake(capacity int64) *fakeBackend {
	return &fakeBackend{capacity: capacity, objs: map[backend.ID]*fakeObj{}, level: levels.Memory}
}

func (f *fakeBackend) Setup(context.Context) error { return nil }
func (f *fakeBackend) Teardown(context.Context) error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}
func (f *fakeBackend) Level() levels.Level { return f.level }

// reserve checks id and room; the caller holds mu.
func (f *fakeBackend) check(op string, id backend.ID, size int64) error {
	if f.closed {
		return backend.Errorf(op, fakeTier, id, backend.ErrClosed, "")
	}
	if _, ok := f.objs[id]; ok {
		return backend.Errorf(op, fakeTier, id, backend.ErrExists, "")
	}
	if f.used+size > f.capacity {
		pinned := int64(0)
		for _, o := range f.objs {
			if o.info.Pins > 0 {
				pinned += o.info.Size
			}
		}
		return backend.NewFullError(op, fakeTier, id, size, f.capacity-f.used, f.capacity, pinned)
	}
	return nil
}

func (f *fakeBackend) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := backend.CheckID("put", fakeTier, id); err != nil {
		return backend.ObjectInfo{}, err
	}
	sum := backend.Checksum(data)
	if opts.Checksum != 0 && opts.Checksum != sum {
		return backend.ObjectInfo{}, backend.Errorf("put", fakeTier, id, backend.ErrCorrupt, "")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("put", id, int64(len(data))); err != nil {
		return backend.ObjectInfo{}, err
	}
	now := time.Now()
	o := &fakeObj{data: bytes.Clone(data), info: backend.ObjectInfo{ID: id, Size: int64(len(data)), Level: f.level,
		Tier: fakeTier, Importance: opts.Importance, Created: now, Accessed: now, Checksum: sum}}
	f.objs[id] = o
	f.used += o.info.Size
	return o.info, nil
}

func (f *fakeBackend) lookup(op string, id backend.ID) (*fakeObj, error) {
	if err := backend.CheckID(op, fakeTier, id); err != nil {
		return nil, err
	}
	if f.closed {
		return nil, backend.Errorf(op, fakeTier, id, backend.ErrClosed, "")
	}
	o, ok := f.objs[id]
	if !ok {
		return nil, backend.Errorf(op, fakeTier, id, backend.ErrNotFound, "")
	}
	return o, nil
}

func (f *fakeBackend) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("get", id)
	if err != nil {
		return nil, err
	}
	return backend.NewBytesObject(o.info, o.data, nil), nil
}

func (f *fakeBackend) Delete(ctx context.Context, id backend.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("delete", id)
	if err != nil {
		return err
	}
	if o.info.Pins > 0 {
		return backend.Errorf("delete", fakeTier, id, backend.ErrPinned, "%d pins", o.info.Pins)
	}
	delete(f.objs, id)
	f.used -= o.info.Size
	return nil
}

func (f *fakeBackend) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("info", id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return o.info, nil
}

func (f *fakeBackend) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("read", id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange("read", fakeTier, id, offset, length, o.info.Size)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.data[offset : offset+n])), nil
}

func (f *fakeBackend) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	if err := backend.CheckID("write", fakeTier, id); err != nil {
		return nil, err
	}
	if err := backend.CheckSize("write", fakeTier, id, size); err != nil {
		return nil, err
	}
	f.mu.Lock()
	err := f.check("write", id, size)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &fakeWriter{f: f, ctx: ctx, id: id, size: size, opts: opts}, nil
}

type fakeWriter struct {
	f    *fakeBackend
	ctx  context.Context
	id   backend.ID
	size int64
	opts backend.PutOptions
	buf  bytes.Buffer
	done bool
}

func (w *fakeWriter) Write(p []byte) (int, error) {
	if int64(w.buf.Len()+len(p)) > w.size {
		return 0, backend.Errorf("write", fakeTier, w.id, backend.ErrInvalidArgument, "more than %d bytes", w.size)
	}
	return w.buf.Write(p)
}

func (w *fakeWriter) Close() error {
	if w.done {
		return backend.Errorf("write", fakeTier, w.id, backend.ErrClosed, "writer closed")
	}
	w.done = true
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if int64(w.buf.Len()) != w.size {
		return backend.Errorf("write", fakeTier, w.id, backend.ErrInvalidArgument, "%d of %d bytes", w.buf.Len(), w.size)
	}
	_, err := w.f.Put(w.ctx, w.id, w.buf.Bytes(), w.opts)
	return err
}

func (w *fakeWriter) Abort() error { w.done = true; return nil }

func (f *fakeBackend) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []backend.ObjectInfo
	for id, o := range f.objs {
		if id > opts.After && strings.HasPrefix(string(id), opts.Prefix) {
			out = append(out, o.info)
		}
	}
	slices.SortFunc(out, func(a, b backend.ObjectInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	limit := opts.Limit
	if limit == 0 {
		limit = backend.DefaultListLimit
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeBackend) Pin(ctx context.Context, id backend.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("pin", id)
	if err == nil {
		o.info.Pins++
	}
	return err
}

func (f *fakeBackend) Unpin(ctx context.Context, id backend.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.lookup("unpin", id)
	if err != nil {
		return err
	}
	if o.info.Pins == 0 {
		return backend.Errorf("unpin", fakeTier, id, backend.ErrNotPinned, "")
	}
	o.info.Pins--
	return nil
}

func (f *fakeBackend) Prefetch(ctx context.Context, id backend.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.lookup("prefetch", id)
	return err
}

func (f *fakeBackend) Stats(ctx context.Context) (backend.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return backend.Stats{}, backend.Errorf("stats", fakeTier, "", backend.ErrClosed, "")
	}
	st := backend.Stats{Tier: fakeTier, Level: f.level, Capacity: f.capacity, Used: f.used, Objects: int64(len(f.objs))}
	for _, o := range f.objs {
		if o.info.Pins > 0 {
			st.Pinned += o.info.Size
			st.PinnedObjects++
		}
	}
	return st, nil
}
