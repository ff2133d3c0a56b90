// Package mytier is a user's own tier, as small as a tier can be: objects in
// a Go map, registered by name as "mytier" when the package is imported. The
// examples use it twice: in a library stack (examples/plugin) and compiled
// into a distore-server of one's own (examples/customserver):
//
//	import _ "distore/examples/mytier"
//
// It keeps the Backend contract (mytier_test.go runs the conformance suite),
// but nothing survives the process: a real tier would keep its objects
// somewhere. What every tier needs is not here: backend.New wraps it
// (backend.Wrap), and the wrapper validates IDs, checks contexts and the
// lifecycle, names errors and, as mapTier asks by embedding
// backend.PinsInWrapper, counts pins.
package mytier

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

// A tier registers itself by name, as database/sql drivers do; the factory
// checks the config and does no I/O.
func init() {
	backend.MustRegister("mytier", func(cfg backend.Config) (backend.Backend, error) {
		r := cfg.Reader("mytier", "capacity") // reports every bad option at once
		capacity := r.Bytes("capacity", 1<<30)
		if err := r.Err(); err != nil {
			return nil, err
		}
		return &mapTier{capacity: capacity}, nil
	})
}

// mapTier keeps objects in a Go map. Objects are immutable, so a Get can hand
// out the stored slice itself: it stays valid after a delete (the map only
// drops its reference).
type mapTier struct {
	backend.PinsInWrapper // pins are the wrapper's to count

	capacity int64

	mu     sync.Mutex
	open   bool
	used   int64
	objs   map[backend.ID]*mapObj
	writes map[backend.ID]bool // IDs being written
}

type mapObj struct {
	info backend.ObjectInfo
	data []byte
}

const tierName = "mytier"

func (m *mapTier) Setup(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open, m.objs, m.writes = true, map[backend.ID]*mapObj{}, map[backend.ID]bool{}
	return nil
}

func (m *mapTier) Teardown(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.open = false
	return nil
}

func (m *mapTier) Level() levels.Level { return levels.Disk }

// reserve takes size bytes for id, or says why it cannot.
func (m *mapTier) reserve(op string, id backend.ID, size int64) error {
	if m.objs[id] != nil || m.writes[id] {
		return backend.Errorf(op, tierName, id, backend.ErrExists, "")
	}
	if m.used+size > m.capacity {
		return backend.NewFullError(op, tierName, id, size, m.capacity-m.used, m.capacity, 0)
	}
	m.used += size
	return nil
}

// publish stores data under id once its checksum is verified.
func (m *mapTier) publish(op string, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	crc := backend.Checksum(data)
	if opts.Checksum != 0 && opts.Checksum != crc {
		return backend.ObjectInfo{}, backend.Errorf(op, tierName, id, backend.ErrCorrupt, "checksum %08x, want %08x", crc, opts.Checksum)
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	info := backend.ObjectInfo{ID: id, Size: int64(len(data)), Level: levels.Disk, Tier: tierName,
		Importance: opts.Importance, Created: created, Accessed: created, Checksum: crc}
	m.objs[id] = &mapObj{info: info, data: data}
	return info, nil
}

func (m *mapTier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reserve("put", id, int64(len(data))); err != nil {
		return backend.ObjectInfo{}, err
	}
	info, err := m.publish("put", id, bytes.Clone(data), opts)
	if err != nil {
		m.used -= int64(len(data))
	}
	return info, err
}

func (m *mapTier) lookup(ctx context.Context, op string, id backend.ID) (*mapObj, error) {
	o := m.objs[id]
	if o == nil {
		return nil, backend.Errorf(op, tierName, id, backend.ErrNotFound, "")
	}
	return o, nil
}

func (m *mapTier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lookup(ctx, "get", id)
	if err != nil {
		return nil, err
	}
	return backend.NewBytesObject(o.info, o.data, nil), nil
}

func (m *mapTier) Delete(ctx context.Context, id backend.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lookup(ctx, "delete", id)
	if err != nil {
		return err
	}
	delete(m.objs, id)
	m.used -= o.info.Size
	return nil
}

func (m *mapTier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lookup(ctx, "info", id)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return o.info, nil
}

func (m *mapTier) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.lookup(ctx, "read", id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange("read", tierName, id, offset, length, o.info.Size)
	if err != nil {
		return nil, err
	}
	return backend.NewReader(io.NopCloser(bytes.NewReader(o.data[offset:offset+n])), o.info), nil
}

// mapWriter buffers a streamed write; Close publishes it.
type mapWriter struct {
	m    *mapTier
	ctx  context.Context
	id   backend.ID
	size int64
	opts backend.PutOptions
	buf  []byte
	done bool
}

func (m *mapTier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.reserve("write", id, size); err != nil {
		return nil, err
	}
	m.writes[id] = true
	return &mapWriter{m: m, ctx: ctx, id: id, size: size, opts: opts, buf: make([]byte, 0, size)}, nil
}

func (w *mapWriter) Write(p []byte) (int, error) {
	if int64(len(w.buf)+len(p)) > w.size {
		return 0, backend.Errorf("write", tierName, w.id, backend.ErrInvalidArgument, "more than the declared %d bytes", w.size)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *mapWriter) finish() {
	w.done = true
	delete(w.m.writes, w.id)
}

func (w *mapWriter) Close() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if w.done {
		return backend.Errorf("write", tierName, w.id, backend.ErrClosed, "writer closed")
	}
	w.finish()
	var err error
	switch {
	case w.ctx.Err() != nil:
		err = backend.Errorf("write", tierName, w.id, w.ctx.Err(), "")
	case int64(len(w.buf)) != w.size:
		err = backend.Errorf("write", tierName, w.id, backend.ErrInvalidArgument, "%d bytes written of %d", len(w.buf), w.size)
	case !w.m.open:
		err = backend.Errorf("write", tierName, w.id, backend.ErrClosed, "")
	default:
		_, err = w.m.publish("write", w.id, w.buf, w.opts)
	}
	if err != nil {
		w.m.used -= w.size
	}
	return err
}

func (w *mapWriter) Abort() error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if !w.done {
		w.finish()
		w.m.used -= w.size
	}
	return nil
}

func (m *mapTier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	var out []backend.ObjectInfo
	for id, o := range m.objs {
		if id > opts.After && strings.HasPrefix(string(id), opts.Prefix) {
			out = append(out, o.info)
		}
	}
	slices.SortFunc(out, func(a, b backend.ObjectInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out[:min(limit, len(out))], nil
}

func (m *mapTier) Prefetch(ctx context.Context, id backend.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.lookup(ctx, "prefetch", id)
	return err
}

func (m *mapTier) Stats(ctx context.Context) (backend.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return backend.Stats{Tier: tierName, Level: levels.Disk, Capacity: m.capacity, Used: m.used, Objects: int64(len(m.objs))}, nil
}
