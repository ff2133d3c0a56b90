package backend

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"distore/levels"
)

// Wrap returns b behind the contract's common checks, done once here for
// every tier (as gocloud.dev/blob's portable Bucket does around its drivers):
//
//   - lifecycle: every call before Setup, or after Teardown, fails with an
//     error wrapping ErrClosed (one sentinel for "not open", whichever side);
//     Setup on a tier that is set up fails with ErrInvalidArgument; Setup
//     after Teardown sets it up again; Teardown of a tier not set up (or
//     already torn down) does nothing and returns nil;
//   - the ID is validated (ErrInvalidID) and the context checked before the
//     tier is called (Trusted gives a view that skips the ID check, for
//     callers that validated it already);
//   - every error names the tier and the object: an error the tier returns
//     without a *Error, *FullError or *SpaceError is wrapped in one;
//   - pins, for a tier that embeds PinsInWrapper: counted here, in memory
//     (they do not survive a restart, as no tier's do), and checked by
//     Delete; the tier never sees Pin or Unpin.
//
// backend.New and backend.Open return wrapped tiers, so a tier's own code
// holds no such checks. Wrapping a wrapped backend returns it unchanged;
// Unwrap returns the tier inside.
func Wrap(name string, b Backend) Backend {
	if _, ok := b.(*checked); ok {
		return b
	}
	c := &wrapCore{name: name, b: b}
	if _, ok := b.(interface{ pinsInWrapper() }); ok {
		c.pins = &pinTable{}
	}
	return &checked{wrapCore: c}
}

// Unwrap returns the tier inside a backend made by Wrap (so callers can reach
// a tier's own methods), or b itself.
func Unwrap(b Backend) Backend {
	if c, ok := b.(*checked); ok {
		return c.b
	}
	return b
}

// Trusted returns a view of b for a caller that has validated every ID it
// passes (a stack calling its tiers, a server calling its stack with an ID
// it took from a request path): the same checks as b, less the ID's, so an
// ID is validated once on its way down. b is a backend made by Wrap, or one
// offering such a view (TrustedIDs() Backend, as the stack does); any other
// backend is returned as it is. The view must never be handed IDs from
// outside: for the tier, an ID is a key or a file name.
func Trusted(b Backend) Backend {
	if t, ok := b.(interface{ TrustedIDs() Backend }); ok {
		return t.TrustedIDs()
	}
	return b
}

// PinsInWrapper, embedded in a tier's type, hands the tier's pin counting to
// Wrap (see there): for tiers whose store has no place for pins (S3, RADOS),
// whose counts would otherwise be a side table copied in each of them. Its
// Pin and Unpin, reached only on the bare tier, fail with
// ErrInvalidArgument.
type PinsInWrapper struct{}

func (PinsInWrapper) pinsInWrapper() {}

// Pin fails: pins are counted by the tier's wrapper.
func (PinsInWrapper) Pin(ctx context.Context, id ID) error {
	return Errorf("pin", "", id, ErrInvalidArgument, "this tier's pins are counted by backend.Wrap; pin the wrapped tier")
}

// Unpin fails: pins are counted by the tier's wrapper.
func (PinsInWrapper) Unpin(ctx context.Context, id ID) error {
	return Errorf("unpin", "", id, ErrInvalidArgument, "this tier's pins are counted by backend.Wrap; unpin the wrapped tier")
}

// Lifecycle states of a wrapped tier.
const (
	stateNew int32 = iota
	stateOpen
	stateClosed
)

// wrapCore is the state a wrapped tier and its Trusted view share.
type wrapCore struct {
	name  string
	b     Backend
	state atomic.Int32
	pins  *pinTable // nil unless the tier embeds PinsInWrapper
}

type checked struct {
	*wrapCore
	trust bool // IDs come validated (Trusted)
}

// Unwrap returns the wrapped tier.
func (c *checked) Unwrap() Backend { return c.b }

// TrustedIDs returns the view of c that does not validate IDs (see Trusted).
func (c *checked) TrustedIDs() Backend {
	if c.trust {
		return c
	}
	return &checked{wrapCore: c.wrapCore, trust: true}
}

// open checks the lifecycle, the context and (when hasID, unless trusted)
// the ID.
func (c *checked) open(ctx context.Context, op string, id ID, hasID bool) error {
	switch c.state.Load() {
	case stateNew:
		return Errorf(op, c.name, id, ErrClosed, "not set up")
	case stateClosed:
		return Errorf(op, c.name, id, ErrClosed, "torn down")
	}
	if hasID && !c.trust {
		if err := id.Validate(); err != nil {
			return &Error{Op: op, Tier: c.name, ID: id, Err: err}
		}
	}
	if err := ctx.Err(); err != nil {
		return Errorf(op, c.name, id, err, "")
	}
	return nil
}

// named returns err so that it names the tier and the object.
func (c *checked) named(op string, id ID, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	var fe *FullError
	var se *SpaceError
	full := errors.As(err, &fe)
	if full && c.pins != nil {
		fe.Pinned = c.pins.bytes() // the tier does not know its pins
	}
	if full || errors.As(err, &e) || errors.As(err, &se) {
		return err
	}
	return &Error{Op: op, Tier: c.name, ID: id, Err: err}
}

func (c *checked) Setup(ctx context.Context) error {
	if c.state.Load() == stateOpen {
		return Errorf("setup", c.name, "", ErrInvalidArgument, "already set up")
	}
	if err := ctx.Err(); err != nil {
		return Errorf("setup", c.name, "", err, "")
	}
	if err := c.b.Setup(ctx); err != nil {
		return c.named("setup", "", err)
	}
	c.state.Store(stateOpen)
	return nil
}

func (c *checked) Teardown(ctx context.Context) error {
	if !c.state.CompareAndSwap(stateOpen, stateClosed) {
		return nil // nothing to release: cleanup paths may call it freely
	}
	if c.pins != nil {
		c.pins.reset() // the holders of pins are gone with the tier
	}
	return c.named("teardown", "", c.b.Teardown(ctx))
}

func (c *checked) Level() levels.Level { return c.b.Level() }

func (c *checked) Put(ctx context.Context, id ID, data []byte, opts PutOptions) (ObjectInfo, error) {
	if err := c.open(ctx, "put", id, true); err != nil {
		return ObjectInfo{}, err
	}
	info, err := c.b.Put(ctx, id, data, opts)
	return info, c.named("put", id, err)
}

func (c *checked) Get(ctx context.Context, id ID) (Object, error) {
	if err := c.open(ctx, "get", id, true); err != nil {
		return nil, err
	}
	o, err := c.b.Get(ctx, id)
	if err != nil {
		return nil, c.named("get", id, err)
	}
	if c.pins != nil {
		o = &pinsObject{o, c.pins.count(id)}
	}
	return o, nil
}

func (c *checked) Delete(ctx context.Context, id ID) error {
	if err := c.open(ctx, "delete", id, true); err != nil {
		return err
	}
	if c.pins != nil {
		unlock := c.pins.locks.Lock(id)
		defer unlock()
		if n := c.pins.count(id); n > 0 {
			return Errorf("delete", c.name, id, ErrPinned, "%d pins", n)
		}
	}
	return c.named("delete", id, c.b.Delete(ctx, id))
}

func (c *checked) ObjectInfo(ctx context.Context, id ID) (ObjectInfo, error) {
	if err := c.open(ctx, "info", id, true); err != nil {
		return ObjectInfo{}, err
	}
	info, err := c.b.ObjectInfo(ctx, id)
	if err == nil && c.pins != nil {
		info.Pins = c.pins.count(id)
	}
	return info, c.named("info", id, err)
}

func (c *checked) OpenReader(ctx context.Context, id ID, offset, length int64) (Reader, error) {
	if err := c.open(ctx, "read", id, true); err != nil {
		return nil, err
	}
	r, err := c.b.OpenReader(ctx, id, offset, length)
	if err != nil {
		return nil, c.named("read", id, err)
	}
	if c.pins != nil {
		r = &pinsReader{r, c.pins.count(id)}
	}
	return r, nil
}

func (c *checked) OpenWriter(ctx context.Context, id ID, size int64, opts PutOptions) (Writer, error) {
	if err := c.open(ctx, "write", id, true); err != nil {
		return nil, err
	}
	if err := CheckSize("write", c.name, id, size); err != nil {
		return nil, err
	}
	w, err := c.b.OpenWriter(ctx, id, size, opts)
	return w, c.named("write", id, err)
}

func (c *checked) List(ctx context.Context, opts ListOptions) ([]ObjectInfo, error) {
	if err := c.open(ctx, "list", "", false); err != nil {
		return nil, err
	}
	l, err := c.b.List(ctx, opts)
	if c.pins != nil {
		for i := range l {
			l[i].Pins = c.pins.count(l[i].ID)
		}
	}
	return l, c.named("list", "", err)
}

func (c *checked) Pin(ctx context.Context, id ID) error {
	if err := c.open(ctx, "pin", id, true); err != nil {
		return err
	}
	if c.pins == nil {
		return c.named("pin", id, c.b.Pin(ctx, id))
	}
	unlock := c.pins.locks.Lock(id)
	defer unlock()
	info, err := c.b.ObjectInfo(ctx, id) // it exists, and its size for Stats
	if err != nil {
		return c.named("pin", id, err)
	}
	c.pins.add(id, info.Size)
	return nil
}

func (c *checked) Unpin(ctx context.Context, id ID) error {
	if err := c.open(ctx, "unpin", id, true); err != nil {
		return err
	}
	if c.pins == nil {
		return c.named("unpin", id, c.b.Unpin(ctx, id))
	}
	unlock := c.pins.locks.Lock(id)
	defer unlock()
	if c.pins.remove(id) {
		return nil
	}
	if _, err := c.b.ObjectInfo(ctx, id); err != nil {
		return c.named("unpin", id, err) // ErrNotFound says more than ErrNotPinned
	}
	return Errorf("unpin", c.name, id, ErrNotPinned, "")
}

func (c *checked) Prefetch(ctx context.Context, id ID) error {
	if err := c.open(ctx, "prefetch", id, true); err != nil {
		return err
	}
	return c.named("prefetch", id, c.b.Prefetch(ctx, id))
}

func (c *checked) Stats(ctx context.Context) (Stats, error) {
	if err := c.open(ctx, "stats", "", false); err != nil {
		return Stats{}, err
	}
	st, err := c.b.Stats(ctx)
	if c.pins != nil {
		st.Pinned, st.PinnedObjects = c.pins.totals()
	}
	return st, c.named("stats", "", err)
}

// IDLocks serialise the operations on one ID that must not interleave
// (commit, delete, pin) within this process: an ID hashes to one of 256
// mutexes. The zero value is ready.
type IDLocks struct{ m [256]sync.Mutex }

var idLockSeed = maphash.MakeSeed()

// Lock locks id's mutex and returns its unlock.
func (l *IDLocks) Lock(id ID) func() {
	m := &l.m[maphash.String(idLockSeed, string(id))%uint64(len(l.m))]
	m.Lock()
	return m.Unlock
}

// pinTable counts the pins of a PinsInWrapper tier. Pin, Unpin and Delete
// of one ID run under its lock in locks, so a pin and a delete never cross.
type pinTable struct {
	locks IDLocks
	mu    sync.Mutex
	m     map[ID]pinCount
}

type pinCount struct {
	n    int
	size int64
}

func (p *pinTable) count(id ID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[id].n
}

func (p *pinTable) add(id ID, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[ID]pinCount{}
	}
	p.m[id] = pinCount{n: p.m[id].n + 1, size: size}
}

// remove takes a pin from id; false if it had none.
func (p *pinTable) remove(id ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.m[id]
	switch {
	case ok && c.n > 1:
		p.m[id] = pinCount{n: c.n - 1, size: c.size}
	case ok:
		delete(p.m, id)
	}
	return ok
}

// totals returns the bytes and the number of pinned objects.
func (p *pinTable) totals() (bytes, objects int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.m {
		bytes += c.size
	}
	return bytes, int64(len(p.m))
}

func (p *pinTable) bytes() int64 { b, _ := p.totals(); return b }

func (p *pinTable) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m = nil
}

// pinsObject and pinsReader report the wrapper's pin count in Info.
type pinsObject struct {
	Object
	pins int
}

func (o *pinsObject) Info() ObjectInfo { i := o.Object.Info(); i.Pins = o.pins; return i }

type pinsReader struct {
	Reader
	pins int
}

func (r *pinsReader) Info() ObjectInfo { i := r.Reader.Info(); i.Pins = r.pins; return i }
