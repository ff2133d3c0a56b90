// Package gpu is distore's GPU tier: objects live in device memory, in one
// large allocation that the tier sub-allocates (package alloc), and move
// between host and device through pinned host staging buffers, so copies run
// at the bus's speed.
//
// The CUDA driver (libcuda.so.1) is loaded at Setup through purego, so the
// package builds everywhere without cgo or CUDA headers; where there is no
// driver or no device, Setup fails with an error wrapping
// backend.ErrUnavailable that says which.
//
// The tier registers as "gpu":
//
//	b, err := backend.Open(ctx, "gpu", backend.Config{"device": "0", "capacity": "8GiB"})
//
// Get returns a DeviceObject: the bytes, copied into pinned host memory, and
// the device pointer of the object, both valid until Close.
//
// Transfers: Put and OpenWriter copy from ordinary Go memory into pinned
// staging "lanes" (two chunks and two CUDA streams each) and queue the DMA of
// one chunk while the next is copied; a large object uses every free lane in
// parallel, each chunk's CRC-32C computed during its copy and the checksums
// combined. Get copies device→host straight into a pinned Get cache (or a
// buffer pinned for it when the cache is full). OpenReader copies only the
// range asked, a few MiB at a time.
//
// The driver's context is current per OS thread: every driver call locks its
// goroutine to the thread and pushes the device's primary context on the
// thread's context stack, popping it after, so a context that other GPU code
// in the process made current stays current.
//
// ExportIPC exports one object's device memory to another process (CUDA
// IPC), in an allocation of its own that lives until the export's Release.
package gpu

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"distore/alloc"
	"distore/backend"
	"distore/levels"
)

// Name is the name the tier registers as, and the Tier of its objects.
const Name = "gpu"

func init() {
	backend.MustRegister(Name, func(cfg backend.Config) (backend.Backend, error) { return New(cfg) })
}

// device is what the tier needs of the driver; *Driver implements it. The
// tier's bookkeeping is tested against a host-memory implementation.
type device interface {
	Name() string
	UUID() string
	MemInfo() (free, total int64, err error)
	MemAlloc(size int64) (uintptr, error)
	MemFree(p uintptr) error
	HostAlloc(size int64) ([]byte, error)
	HostFree(b []byte) error
	CopyDtoH(dst []byte, src uintptr) error
	CopyDtoD(dst, src uintptr, n int64) error
	MemsetD8(p uintptr, v byte, n int64) error
	CopyHtoDAsync(dst uintptr, src []byte, s Stream) error
	NewStream() (Stream, error)
	Sync(s Stream) error
	DestroyStream(s Stream) error
	IPCHandle(p uintptr) ([IPCHandleSize]byte, error)
	Close() error
}

func openDriver(ordinal int) (device, error) {
	d, err := OpenDriver(ordinal)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Tier is the GPU tier. Make it with New (or backend.New("gpu", cfg)) and Setup it.
type Tier struct {
	cfg     config
	openDev func(ordinal int) (device, error)

	mu     sync.Mutex
	state  tierState
	active int // operations, objects, readers and writers outstanding
	freed  bool
	dev    device
	devNm  string
	total  int64 // device memory at Setup
	base   uintptr
	arena  *alloc.Arena
	index  map[backend.ID]*entry
	pinned int64 // bytes of pinned objects
	npins  int64 // pinned objects
	uuid   string
	// IPC exports not yet released: each holds the tier open (see ExportIPC).
	exports  int
	exported int64 // their device memory, outside the tier's capacity

	hostMu    sync.Mutex
	host      []byte // pinned memory Get copies objects into
	hostArena *alloc.Arena

	staging []byte // pinned, split into lanes
	lanes   chan *lane
	all     []*lane
	chunk   int64
}

type tierState int

const (
	stateNew tierState = iota
	stateOpen
	stateClosed
)

// entry is one object. refs counts the index's reference and each open
// object or reader; the device range is freed when it drops to zero, so a
// deleted object's DevicePtr stays valid until its last Get is closed.
type entry struct {
	info backend.ObjectInfo
	off  int64 // offset in the arena; -1 for an empty object
	refs int
}

// New returns a GPU tier configured by cfg (see the Key constants); Setup
// loads the driver and takes the device memory. It is the bare tier (for its
// own methods, ExportIPC): the contract's ID, context and lifecycle checks
// are backend.Wrap's, which backend.New("gpu", cfg) applies, so a caller of
// the bare tier passes valid IDs (IDs here only key a map: none names a path).
func New(cfg backend.Config) (*Tier, error) {
	c, err := parseConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Tier{cfg: c, openDev: openDriver}, nil
}

// Level is levels.GPU.
func (t *Tier) Level() levels.Level { return levels.GPU }

// Setup loads the CUDA driver, opens the device and allocates the tier's
// device memory, staging buffers and pinned Get cache.
func (t *Tier) Setup(ctx context.Context) error {
	const op = "setup"
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, Name, "", err, "")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.state {
	case stateOpen:
		return backend.Errorf(op, Name, "", backend.ErrInvalidArgument, "already set up")
	case stateClosed:
		return backend.Errorf(op, Name, "", backend.ErrClosed, "torn down")
	}
	dev, err := t.openDev(t.cfg.device)
	if err != nil {
		return backend.Errorf(op, Name, "", err, "")
	}
	ok := false
	defer func() {
		if !ok {
			t.freeLocked()
			t.dev, t.freed = nil, false
		}
	}()
	t.dev, t.devNm, t.uuid = dev, dev.Name(), dev.UUID()
	free, total, err := dev.MemInfo()
	if err != nil {
		return backend.Errorf(op, Name, "", unavailable(err), "device %d (%s)", t.cfg.device, t.devNm)
	}
	t.total = total
	capacity := t.cfg.capacity(free) &^ (deviceAlign - 1)
	if capacity < deviceAlign || capacity > free {
		return backend.Errorf(op, Name, "", backend.ErrUnavailable,
			"capacity %s does not fit the %s free of %s on device %d (%s)", backend.FormatBytes(capacity),
			backend.FormatBytes(free), backend.FormatBytes(total), t.cfg.device, t.devNm)
	}
	if t.base, err = dev.MemAlloc(capacity); err != nil {
		return backend.Errorf(op, Name, "", unavailable(err), "allocating %s on device %d (%s)",
			backend.FormatBytes(capacity), t.cfg.device, t.devNm)
	}
	t.arena = alloc.New(capacity, deviceAlign)
	if err := t.setupStaging(); err != nil {
		return backend.Errorf(op, Name, "", unavailable(err), "pinning %s of staging memory", backend.FormatBytes(t.cfg.staging))
	}
	if t.cfg.hostCache > 0 {
		if t.host, err = dev.HostAlloc(t.cfg.hostCache); err != nil {
			return backend.Errorf(op, Name, "", unavailable(err), "pinning %s of host memory for %s",
				backend.FormatBytes(t.cfg.hostCache), KeyHostCache)
		}
	}
	t.hostArena = alloc.New(int64(len(t.host)), hostAlign)
	t.index = map[backend.ID]*entry{}
	t.state, t.active = stateOpen, 0
	ok = true
	slog.Info("gpu tier ready", "device", t.cfg.device, "name", t.devNm, "uuid", t.uuid,
		"capacity", backend.FormatBytes(capacity), "device_free", backend.FormatBytes(free),
		"device_total", backend.FormatBytes(total), "lanes", len(t.all), "chunk", backend.FormatBytes(t.chunk),
		"host_cache", backend.FormatBytes(int64(len(t.host))))
	return nil
}

// Teardown releases the device memory and the driver once every object,
// reader and writer handed out is closed and every IPC export released;
// methods called after it return ErrClosed. Teardown is idempotent.
func (t *Tier) Teardown(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state == stateOpen && t.active == 0 {
		t.state = stateClosed
		return t.freeLocked()
	}
	t.state = stateClosed
	return nil
}

// freeLocked releases what Setup took. It runs once, with t.mu held.
func (t *Tier) freeLocked() error {
	if t.freed || t.dev == nil {
		return nil
	}
	t.freed = true
	var errs []error
	for _, l := range t.all {
		for _, s := range l.stream {
			if s != 0 {
				errs = append(errs, t.dev.DestroyStream(s))
			}
		}
	}
	if t.staging != nil {
		errs = append(errs, t.dev.HostFree(t.staging))
	}
	if t.host != nil {
		errs = append(errs, t.dev.HostFree(t.host))
	}
	if t.base != 0 {
		errs = append(errs, t.dev.MemFree(t.base))
	}
	errs = append(errs, t.dev.Close())
	t.all, t.lanes, t.staging, t.host, t.base, t.index = nil, nil, nil, nil, 0, nil
	if err := errors.Join(errs...); err != nil {
		slog.Warn("gpu tier: releasing device resources", "err", err)
		return backend.Errorf("teardown", Name, "", unavailable(err), "")
	}
	return nil
}

// acquire counts an operation in flight, failing once the tier is not open.
func (t *Tier) acquireLocked(op string, id backend.ID) error {
	switch t.state {
	case stateNew:
		return backend.Errorf(op, Name, id, backend.ErrClosed, "not set up")
	case stateClosed:
		return backend.Errorf(op, Name, id, backend.ErrClosed, "torn down")
	}
	t.active++
	return nil
}

// release ends an operation; the last one after Teardown frees the device.
func (t *Tier) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.state == stateClosed && t.active == 0 {
		t.freeLocked()
	}
}

// unrefLocked drops a reference to e, freeing its device range at zero.
func (t *Tier) unrefLocked(e *entry) {
	e.refs--
	if e.refs == 0 && e.off >= 0 && !t.freed {
		t.arena.Free(e.off, e.info.Size)
		e.off = -1
	}
}

// lookup finds id with the tier open, counting an operation in flight and a
// reference to the entry when ref is set.
func (t *Tier) lookup(ctx context.Context, op string, id backend.ID, ref bool) (*entry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.acquireLocked(op, id); err != nil {
		return nil, err
	}
	e := t.index[id]
	if e == nil {
		t.active--
		return nil, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	}
	if ref {
		e.refs++
	} else {
		t.active--
	}
	return e, nil
}

// reservation is a device range taken for an object being written.
type reservation struct {
	id   backend.ID
	off  int64 // -1 for an empty object
	size int64
	dptr uintptr
}

// reserve takes a device range for a new object of size bytes and counts an
// operation in flight; commit or unreserve ends it.
func (t *Tier) reserve(ctx context.Context, op string, id backend.ID, size int64) (reservation, error) {
	r := reservation{id: id, off: -1, size: size}
	if err := backend.CheckSize(op, Name, id, size); err != nil { // Put's size is len(data); this is OpenWriter's
		return r, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.acquireLocked(op, id); err != nil {
		return r, err
	}
	if t.index[id] != nil {
		t.active--
		return r, backend.Errorf(op, Name, id, backend.ErrExists, "")
	}
	if size > 0 {
		off, ok := t.arena.Alloc(size)
		if !ok {
			t.active--
			return r, backend.NewFullError(op, Name, id, size, t.arena.FreeBytes(), t.arena.Capacity(), t.pinned)
		}
		r.off, r.dptr = off, t.base+uintptr(off)
	}
	return r, nil
}

func (t *Tier) unreserve(r reservation) {
	t.mu.Lock()
	if r.off >= 0 && !t.freed {
		t.arena.Free(r.off, r.size)
	}
	t.mu.Unlock()
	t.release()
}

// commit publishes a written reservation.
func (t *Tier) commit(op string, r reservation, crc uint32, opts backend.PutOptions) (backend.ObjectInfo, error) {
	t.mu.Lock()
	var err error
	switch {
	case t.state != stateOpen:
		err = backend.Errorf(op, Name, r.id, backend.ErrClosed, "torn down during the write")
	case t.index[r.id] != nil:
		err = backend.Errorf(op, Name, r.id, backend.ErrExists, "")
	}
	if err != nil {
		t.mu.Unlock()
		t.unreserve(r)
		return backend.ObjectInfo{}, err
	}
	now := time.Now()
	created := opts.Created
	if created.IsZero() {
		created = now
	}
	e := &entry{off: r.off, refs: 1, info: backend.ObjectInfo{
		ID: r.id, Size: r.size, Level: levels.GPU, Tier: Name, Importance: opts.Importance,
		Created: created, Accessed: now, Checksum: crc,
	}}
	t.index[r.id] = e
	info := e.info
	t.mu.Unlock()
	t.release()
	return info, nil
}

// verify checks the checksum the caller expects, if any.
func verify(op string, id backend.ID, got uint32, opts backend.PutOptions) error {
	if opts.Checksum != 0 && got != opts.Checksum {
		return backend.Errorf(op, Name, id, backend.ErrCorrupt, "checksum %08x, expected %08x", got, opts.Checksum)
	}
	return nil
}

// Put copies data into device memory through the staging buffers.
func (t *Tier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	const op = "put"
	r, err := t.reserve(ctx, op, id, int64(len(data)))
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	crc, err := t.upload(ctx, r.dptr, data)
	if err == nil {
		err = verify(op, id, crc, opts)
	}
	if err != nil {
		t.unreserve(r)
		return backend.ObjectInfo{}, wrap(op, id, err)
	}
	return t.commit(op, r, crc, opts)
}

// DeviceObject is what Get returns: the object's bytes in pinned host memory
// and its place in device memory, for GPU consumers. Both stay valid until
// Close, even if the object is deleted meanwhile; neither may be used after
// it. ReadAt after Close fails with ErrClosed, and Close waits for ReadAt
// calls in flight; but the slice Bytes returned is the pinned memory itself,
// which Close frees, so the caller must stop using it before Close.
type DeviceObject interface {
	backend.Object
	// DevicePtr is the object's address in device memory (a CUdeviceptr), 0
	// for an empty object. Objects are immutable: consumers must not write
	// there.
	DevicePtr() uintptr
	// DeviceSize is the object's size in device memory.
	DeviceSize() int64
	// Device is the ordinal of the device that holds the object.
	Device() int
}

type object struct {
	backend.Object
	dptr   uintptr
	size   int64
	device int

	// mu is held for reading by each ReadAt and for writing by Close, which
	// frees the pinned buffer: a read either finishes before the free or
	// sees closed.
	mu     sync.RWMutex
	closed bool
}

// ReadAt fails after Close rather than read memory that was given back.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return 0, backend.Errorf("read", Name, o.Info().ID, backend.ErrClosed, "object closed")
	}
	return o.Object.ReadAt(p, off)
}

// Bytes returns nil after Close; a slice taken before Close must not be used
// after it.
func (o *object) Bytes() []byte {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return nil
	}
	return o.Object.Bytes()
}

// Close waits for reads in flight, then gives back the pinned buffer and the
// device range; it is idempotent.
func (o *object) Close() error {
	o.mu.Lock()
	was := o.closed
	o.closed = true
	o.mu.Unlock()
	if was {
		return nil
	}
	return o.Object.Close()
}

func (o *object) DevicePtr() uintptr { return o.dptr }
func (o *object) DeviceSize() int64  { return o.size }
func (o *object) Device() int        { return o.device }

// Get copies the object into pinned host memory and returns it as a
// DeviceObject.
func (t *Tier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	const op = "get"
	e, err := t.lookup(ctx, op, id, true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	e.info.Accessed = time.Now()
	info, dptr := e.info, t.devPtr(e)
	t.mu.Unlock()
	done := func() {
		t.mu.Lock()
		t.unrefLocked(e)
		t.mu.Unlock()
		t.release()
	}
	buf, free, err := t.hostBuf(info.Size)
	if err != nil {
		done()
		return nil, wrap(op, id, err)
	}
	if err := t.download(ctx, buf, dptr); err != nil {
		free()
		done()
		return nil, wrap(op, id, err)
	}
	obj := backend.NewBytesObject(info, buf, func() { free(); done() })
	return &object{Object: obj, dptr: dptr, size: info.Size, device: t.cfg.device}, nil
}

// devPtr is e's device address; t.mu held.
func (t *Tier) devPtr(e *entry) uintptr {
	if e.off < 0 {
		return 0
	}
	return t.base + uintptr(e.off)
}

// Delete removes the object; its device range is freed once no Get of it is
// open.
func (t *Tier) Delete(ctx context.Context, id backend.ID) error {
	_, err := t.withEntry(ctx, "delete", id, func(e *entry) error {
		if e.info.Pins > 0 {
			return backend.Errorf("delete", Name, id, backend.ErrPinned, "%d pins", e.info.Pins)
		}
		delete(t.index, id)
		t.unrefLocked(e)
		return nil
	})
	return err
}

// ObjectInfo returns the object's metadata.
func (t *Tier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	const op = "info"
	return t.withEntry(ctx, op, id, func(e *entry) error { return nil })
}

// withEntry runs f on id's entry under the tier's lock and returns its info.
func (t *Tier) withEntry(ctx context.Context, op string, id backend.ID, f func(e *entry) error) (backend.ObjectInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != stateOpen {
		return backend.ObjectInfo{}, backend.Errorf(op, Name, id, backend.ErrClosed, "not set up or torn down")
	}
	e := t.index[id]
	if e == nil {
		return backend.ObjectInfo{}, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	}
	if err := f(e); err != nil {
		return backend.ObjectInfo{}, err
	}
	return e.info, nil
}

// Pin adds one to the object's pin count.
func (t *Tier) Pin(ctx context.Context, id backend.ID) error {
	_, err := t.withEntry(ctx, "pin", id, func(e *entry) error {
		if e.info.Pins == 0 {
			t.pinned += e.info.Size
			t.npins++
		}
		e.info.Pins++
		return nil
	})
	return err
}

// Unpin takes one from the object's pin count; ErrNotPinned if it has none.
func (t *Tier) Unpin(ctx context.Context, id backend.ID) error {
	_, err := t.withEntry(ctx, "unpin", id, func(e *entry) error {
		if e.info.Pins == 0 {
			return backend.Errorf("unpin", Name, id, backend.ErrNotPinned, "")
		}
		e.info.Pins--
		if e.info.Pins == 0 {
			t.pinned -= e.info.Size
			t.npins--
		}
		return nil
	})
	return err
}

// Prefetch checks that the object exists: device memory is this tier's
// fastest place.
func (t *Tier) Prefetch(ctx context.Context, id backend.ID) error {
	_, err := t.withEntry(ctx, "prefetch", id, func(e *entry) error { return nil })
	return err
}

// List returns a page of objects in ascending ID order.
func (t *Tier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	const op = "list"
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf(op, Name, "", err, "")
	}
	if opts.Limit < 0 {
		return nil, backend.Errorf(op, Name, "", backend.ErrInvalidArgument, "limit %d is negative", opts.Limit)
	}
	limit := cmp.Or(opts.Limit, backend.DefaultListLimit)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != stateOpen {
		return nil, backend.Errorf(op, Name, "", backend.ErrClosed, "not set up or torn down")
	}
	var out []backend.ObjectInfo
	for id, e := range t.index {
		if id > opts.After && strings.HasPrefix(string(id), opts.Prefix) {
			out = append(out, e.info)
		}
	}
	slices.SortFunc(out, func(a, b backend.ObjectInfo) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if len(out) > limit {
		out = out[:limit:limit]
	}
	return out, nil
}

// Stats reports the tier's capacity and usage. Used counts device memory
// still held by deleted objects whose Gets are open.
func (t *Tier) Stats(ctx context.Context) (backend.Stats, error) {
	if err := ctx.Err(); err != nil {
		return backend.Stats{}, backend.Errorf("stats", Name, "", err, "")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != stateOpen {
		return backend.Stats{}, backend.Errorf("stats", Name, "", backend.ErrClosed, "not set up or torn down")
	}
	return backend.Stats{
		Tier: Name, Level: levels.GPU, Capacity: t.arena.Capacity(), Used: t.arena.Used(),
		Objects: int64(len(t.index)), Pinned: t.pinned, PinnedObjects: t.npins,
	}, nil
}

// DeviceInfo describes the tier's device.
type DeviceInfo struct {
	Ordinal int    `json:"ordinal"`
	Name    string `json:"name"`
	// Free and Total are the device's memory (cuMemGetInfo), all users counted.
	Free  int64 `json:"free"`
	Total int64 `json:"total"`
	// UUID names the device in every process ("GPU-..."), whatever its
	// CUDA_VISIBLE_DEVICES.
	UUID string `json:"uuid"`
	// Capacity is the device memory the tier holds.
	Capacity int64 `json:"capacity"`
	// Exports and Exported count the IPC exports not yet released and their
	// device memory, which is outside Capacity.
	Exports  int   `json:"exports"`
	Exported int64 `json:"exported"`
}

// DeviceInfo reports the tier's device and its memory as the driver sees it.
func (t *Tier) DeviceInfo(ctx context.Context) (DeviceInfo, error) {
	t.mu.Lock()
	if err := t.acquireLocked("device-info", ""); err != nil {
		t.mu.Unlock()
		return DeviceInfo{}, err
	}
	di := DeviceInfo{Ordinal: t.cfg.device, Name: t.devNm, UUID: t.uuid, Capacity: t.arena.Capacity(),
		Exports: t.exports, Exported: t.exported}
	dev := t.dev
	t.mu.Unlock()
	defer t.release()
	free, total, err := dev.MemInfo()
	if err != nil {
		return di, backend.Errorf("device-info", Name, "", unavailable(err), "")
	}
	di.Free, di.Total = free, total
	return di, nil
}

// String describes the tier: "gpu 0 (NVIDIA H100): 1.5 GiB of 40.0 GiB used, device 80.0 GiB".
func (t *Tier) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != stateOpen {
		return fmt.Sprintf("gpu %d (not set up or torn down)", t.cfg.device)
	}
	return fmt.Sprintf("gpu %d (%s): %s of %s used, device %s", t.cfg.device, t.devNm,
		backend.FormatBytes(t.arena.Used()), backend.FormatBytes(t.arena.Capacity()), backend.FormatBytes(t.total))
}

// unavailable marks a driver failure as ErrUnavailable, keeping the cause.
func unavailable(err error) error {
	if errors.Is(err, backend.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", backend.ErrUnavailable, err)
}

// wrap names op, tier and object on an error from a transfer.
func wrap(op string, id backend.ID, err error) error {
	if err == nil {
		return nil
	}
	var be *backend.Error
	var fe *backend.FullError
	switch {
	case errors.As(err, &be), errors.As(err, &fe):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return backend.Errorf(op, Name, id, err, "")
	}
	return backend.Errorf(op, Name, id, unavailable(err), "")
}
