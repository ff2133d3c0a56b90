package backend

import (
	"context"
	"errors"
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
//     tier is called;
//   - every error names the tier and the object: an error the tier returns
//     without a *Error, *FullError or *SpaceError is wrapped in one.
//
// backend.New and backend.Open return wrapped tiers. Wrapping a wrapped
// backend returns it unchanged; Unwrap returns the tier inside.
func Wrap(name string, b Backend) Backend {
	if _, ok := b.(*checked); ok {
		return b
	}
	return &checked{name: name, b: b}
}

// Unwrap returns the tier inside a backend made by Wrap (so callers can reach
// a tier's own methods), or b itself.
func Unwrap(b Backend) Backend {
	if c, ok := b.(*checked); ok {
		return c.b
	}
	return b
}

// Lifecycle states of a wrapped tier.
const (
	stateNew int32 = iota
	stateOpen
	stateClosed
)

type checked struct {
	name  string
	b     Backend
	state atomic.Int32
}

// Unwrap returns the wrapped tier.
func (c *checked) Unwrap() Backend { return c.b }

// open checks the lifecycle, the context and (when id is given, or must be)
// the ID.
func (c *checked) open(ctx context.Context, op string, id ID, hasID bool) error {
	switch c.state.Load() {
	case stateNew:
		return Errorf(op, c.name, id, ErrClosed, "not set up")
	case stateClosed:
		return Errorf(op, c.name, id, ErrClosed, "torn down")
	}
	if hasID {
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
	if errors.As(err, &e) || errors.As(err, &fe) || errors.As(err, &se) {
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
	return o, c.named("get", id, err)
}

func (c *checked) Delete(ctx context.Context, id ID) error {
	if err := c.open(ctx, "delete", id, true); err != nil {
		return err
	}
	return c.named("delete", id, c.b.Delete(ctx, id))
}

func (c *checked) ObjectInfo(ctx context.Context, id ID) (ObjectInfo, error) {
	if err := c.open(ctx, "info", id, true); err != nil {
		return ObjectInfo{}, err
	}
	info, err := c.b.ObjectInfo(ctx, id)
	return info, c.named("info", id, err)
}

func (c *checked) OpenReader(ctx context.Context, id ID, offset, length int64) (Reader, error) {
	if err := c.open(ctx, "read", id, true); err != nil {
		return nil, err
	}
	r, err := c.b.OpenReader(ctx, id, offset, length)
	return r, c.named("read", id, err)
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
	return l, c.named("list", "", err)
}

func (c *checked) Pin(ctx context.Context, id ID) error {
	if err := c.open(ctx, "pin", id, true); err != nil {
		return err
	}
	return c.named("pin", id, c.b.Pin(ctx, id))
}

func (c *checked) Unpin(ctx context.Context, id ID) error {
	if err := c.open(ctx, "unpin", id, true); err != nil {
		return err
	}
	return c.named("unpin", id, c.b.Unpin(ctx, id))
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
	return st, c.named("stats", "", err)
}
