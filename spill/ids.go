package spill

import (
	"context"

	"distore/backend"
)

// The stack's door: each method taking an ID validates it here, once, and
// the stack then calls its tiers through their Trusted views, which do not
// validate it again. A caller that validated the ID itself (the server,
// from the request path) goes through TrustedIDs and skips this check too.

// Get returns the object from the tier that holds it. With PromoteOnGet, an
// object in a lower tier is also promoted in the background.
func (s *Stack) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	if err := backend.CheckID("get", s.name, id); err != nil {
		return nil, err
	}
	return s.get(ctx, id)
}

// OpenReader streams a range of the object from the tier that holds it.
func (s *Stack) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	if err := backend.CheckID("read", s.name, id); err != nil {
		return nil, err
	}
	return s.openReader(ctx, id, offset, length)
}

// ObjectInfo returns the object's metadata from the index (no tier I/O).
func (s *Stack) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	if err := backend.CheckID("info", s.name, id); err != nil {
		return backend.ObjectInfo{}, err
	}
	return s.objectInfo(ctx, id)
}

// Delete removes the object (see remove).
func (s *Stack) Delete(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("delete", s.name, id); err != nil {
		return err
	}
	return s.remove(ctx, id)
}

// Pin adds a pin (see pin).
func (s *Stack) Pin(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("pin", s.name, id); err != nil {
		return err
	}
	return s.pin(ctx, id)
}

// Unpin takes a pin away; the last one also unpins the object in its tier.
func (s *Stack) Unpin(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("unpin", s.name, id); err != nil {
		return err
	}
	return s.unpin(ctx, id)
}

// Prefetch moves the object up to the fastest tier that has room for it (see
// prefetch).
func (s *Stack) Prefetch(ctx context.Context, id backend.ID) error {
	if err := backend.CheckID("prefetch", s.name, id); err != nil {
		return err
	}
	return s.prefetch(ctx, id)
}

// Put stores data in the fastest tier that accepts it (see put).
func (s *Stack) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := backend.CheckID("put", s.name, id); err != nil {
		return backend.ObjectInfo{}, err
	}
	return s.put(ctx, id, data, opts)
}

// OpenWriter places the object as Put does and streams it into that tier
// (see openWriter).
func (s *Stack) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	if err := backend.CheckID("write", s.name, id); err != nil {
		return nil, err
	}
	return s.openWriter(ctx, id, size, opts)
}

// Hold keeps the object where it is until release is called (see hold).
func (s *Stack) Hold(ctx context.Context, id backend.ID) (release func(), err error) {
	if err := backend.CheckID("hold", s.name, id); err != nil {
		return nil, err
	}
	return s.hold(ctx, id)
}

// TrustedIDs returns the stack's view for callers that validated every ID
// they pass (see backend.Trusted).
func (s *Stack) TrustedIDs() backend.Backend { return trusted{s} }

// trusted is the Stack less its ID checks.
type trusted struct{ *Stack }

func (t trusted) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	return t.get(ctx, id)
}

func (t trusted) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	return t.openReader(ctx, id, offset, length)
}

func (t trusted) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	return t.objectInfo(ctx, id)
}

func (t trusted) Delete(ctx context.Context, id backend.ID) error { return t.remove(ctx, id) }
func (t trusted) Pin(ctx context.Context, id backend.ID) error    { return t.pin(ctx, id) }
func (t trusted) Unpin(ctx context.Context, id backend.ID) error  { return t.unpin(ctx, id) }

func (t trusted) Prefetch(ctx context.Context, id backend.ID) error { return t.prefetch(ctx, id) }

func (t trusted) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	return t.put(ctx, id, data, opts)
}

func (t trusted) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	return t.openWriter(ctx, id, size, opts)
}

func (t trusted) Hold(ctx context.Context, id backend.ID) (release func(), err error) {
	return t.hold(ctx, id)
}

// TrustedIDs returns t.
func (t trusted) TrustedIDs() backend.Backend { return t }
