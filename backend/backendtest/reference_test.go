package backendtest_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/levels"
)

// refTier is the simplest correct Backend: a map on the Go heap. It exists to
// check that the suite passes a correct backend.
type refTier struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	objs     map[backend.ID]*refObj
	closed   bool
}

type refObj struct {
	info backend.ObjectInfo
	data []byte
}

const tier = "ref"

func (r *refTier) check(ctx context.Context, op string, id backend.ID) error {
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, tier, id, err, "")
	}
	if r.closed {
		return backend.Errorf(op, tier, id, backend.ErrClosed, "")
	}
	if op != "stats" && op != "list" {
		return backend.CheckID(op, tier, id)
	}
	return nil
}

func (r *refTier) lookup(ctx context.Context, op string, id backend.ID) (*refObj, error) {
	if err := r.check(ctx, op, id); err != nil {
		return nil, err
	}
	o, ok := r.objs[id]
	if !ok {
		return nil, backend.Errorf(op, tier, id, backend.ErrNotFound, "")
	}
	return o, nil
}

func (r *refTier) Setup(context.Context) error { r.objs = map[backend.ID]*refObj{}; return nil }
func (r *refTier) Teardown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
func (r *refTier) Level() levels.Level { return levels.Memory }

func (r *refTier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(ctx, "put", id); err != nil {
		return backend.ObjectInfo{}, err
	}
	if _, ok := r.objs[id]; ok {
		return backend.ObjectInfo{}, backend.Errorf("put", tier, id, backend.ErrExists, "")
	}
	size := int64(len(data))
	if r.used+size > r.capacity {
		return backend.ObjectInfo{}, backend.NewFullError("put", tier, id, size, r.capacity-r.used, r.capacity, 0)
	}
	crc := backend.Checksum(data)
	if opts.Checksum != 0 && opts.Checksum != crc {
		return backend.ObjectInfo{}, backend.Errorf("put", tier, id, backend.ErrCorrupt, "")
	}
	now := time.Now()
	created := opts.Created
	if created.IsZero() {
		created = now
	}
	o := &refObj{data: slices.Clone(data), info: backend.ObjectInfo{ID: id, Size: size, Level: levels.Memory, Tier: tier,
		Importance: opts.Importance, Created: created, Accessed: now, Checksum: crc}}
	r.objs[id] = o
	r.used += size
	return o.info, nil
}

func (r *refTier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "get", id)
	if err != nil {
		return nil, err
	}
	return backend.NewBytesObject(o.info, o.data, nil), nil
}

func (r *refTier) Delete(ctx context.Context, id backend.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "delete", id)
	if err != nil {
		return err
	}
	if o.info.Pins > 0 {
		return backend.Errorf("delete", tier, id, backend.ErrPinned, "")
	}
	delete(r.objs, id)
	r.used -= o.info.Size
	return nil
}

func (r *refTier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "info", id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return o.info, nil
}

func (r *refTier) OpenReader(ctx context.Context, id backend.ID, off, n int64) (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "read", id)
	if err != nil {
		return nil, err
	}
	n, err = backend.CheckRange("read", tier, id, off, n, o.info.Size)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader(string(o.data[off : off+n]))), nil
}

type refWriter struct {
	r    *refTier
	ctx  context.Context
	id   backend.ID
	size int64
	opts backend.PutOptions
	buf  []byte
	done bool
}

func (w *refWriter) Write(p []byte) (int, error) {
	if int64(len(w.buf)+len(p)) > w.size {
		return 0, backend.Errorf("write", tier, w.id, backend.ErrInvalidArgument, "more than %d bytes", w.size)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *refWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	if int64(len(w.buf)) != w.size {
		return backend.Errorf("write", tier, w.id, backend.ErrInvalidArgument, "%d of %d bytes", len(w.buf), w.size)
	}
	_, err := w.r.Put(w.ctx, w.id, w.buf, w.opts)
	return err
}

func (w *refWriter) Abort() error { w.done = true; return nil }

func (r *refTier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(ctx, "write", id); err != nil {
		return nil, err
	}
	if err := backend.CheckSize("write", tier, id, size); err != nil {
		return nil, err
	}
	return &refWriter{r: r, ctx: ctx, id: id, size: size, opts: opts}, nil
}

func (r *refTier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(ctx, "list", ""); err != nil {
		return nil, err
	}
	var out []backend.ObjectInfo
	for id, o := range r.objs {
		if strings.HasPrefix(string(id), opts.Prefix) && id > opts.After {
			out = append(out, o.info)
		}
	}
	slices.SortFunc(out, func(a, b backend.ObjectInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	return out[:min(limit, len(out))], nil
}

func (r *refTier) Pin(ctx context.Context, id backend.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "pin", id)
	if err == nil {
		o.info.Pins++
	}
	return err
}

func (r *refTier) Unpin(ctx context.Context, id backend.ID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookup(ctx, "unpin", id)
	if err != nil {
		return err
	}
	if o.info.Pins == 0 {
		return backend.Errorf("unpin", tier, id, backend.ErrNotPinned, "")
	}
	o.info.Pins--
	return nil
}

func (r *refTier) Prefetch(ctx context.Context, id backend.ID) error {
	_, err := r.ObjectInfo(ctx, id)
	return err
}

func (r *refTier) Stats(ctx context.Context) (backend.Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(ctx, "stats", ""); err != nil {
		return backend.Stats{}, err
	}
	st := backend.Stats{Tier: tier, Level: levels.Memory, Capacity: r.capacity, Used: r.used, Objects: int64(len(r.objs))}
	for _, o := range r.objs {
		if o.info.Pins > 0 {
			st.Pinned += o.info.Size
			st.PinnedObjects++
		}
	}
	return st, nil
}

func factory() backendtest.Factory {
	return backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
		r := &refTier{capacity: capacity}
		if err := r.Setup(context.Background()); err != nil {
			t.Fatal(err)
		}
		return r
	}}
}

// TestReference checks that the suite passes a correct backend.
func TestReference(t *testing.T) { backendtest.Run(t, factory()) }

func BenchmarkReference(b *testing.B) { backendtest.Bench(b, factory()) }
