package spill

import (
	"context"
	"errors"
	"io"

	"distore/backend"
)

// retries bounds how often an operation chases an object that a concurrent
// move took to another tier.
const retries = 8

// lookup returns id's committed entry and the tier holding it, recording a use
// when touch is set.
func (s *Stack) lookup(op string, id backend.ID, touch bool) (*entry, int, error) {
	e, i, _, err := s.lookupInfo(op, id, touch, false)
	return e, i, err
}

// lookupInfo is lookup that also returns the object's metadata (if
// withInfo), under the same hold of s.mu: a get or an info of a small
// object costs little more than the lock.
func (s *Stack) lookupInfo(op string, id backend.ID, touch, withInfo bool) (*entry, int, backend.ObjectInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closedErr(op, id); err != nil {
		return nil, -1, backend.ObjectInfo{}, err
	}
	e, ok := s.index[id]
	if !ok || e.pending {
		return nil, -1, backend.ObjectInfo{}, backend.Errorf(op, s.name, id, backend.ErrNotFound, "")
	}
	if touch {
		s.touch(e)
	}
	var info backend.ObjectInfo
	if withInfo {
		info = s.infoOf(e)
	}
	return e, e.tier, info, nil
}

// lockLive looks id up and locks its entry, then s.mu, retrying (a bounded
// number of times) while a concurrent delete has just removed the entry. On
// success both locks are held; the caller unlocks s.mu, then e.mu.
func (s *Stack) lockLive(op string, id backend.ID, touch bool) (*entry, error) {
	for attempt := 0; ; attempt++ {
		e, _, err := s.lookup(op, id, touch)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		s.mu.Lock()
		if !e.gone {
			return e, nil
		}
		s.mu.Unlock()
		e.mu.Unlock()
		if attempt >= retries {
			return nil, backend.Errorf(op, s.name, id, backend.ErrNotFound, "")
		}
	}
}

// addPins changes e's pin count by d, keeping its tier's counters right.
// Called with s.mu held.
func (s *Stack) addPins(e *entry, d int) {
	s.account(e, -1)
	e.pins += d
	s.account(e, +1)
}

// movedAway reports whether e is no longer in tier i (a move switched it), so
// a NotFound from tier i is worth a retry.
func (s *Stack) movedAway(e *entry, i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.gone {
		return s.index[e.id] != nil // deleted and put again
	}
	return e.tier != i
}

// notFound turns a tier's NotFound for an object the index no longer has into
// the stack's own error (which names the stack).
func (s *Stack) notFound(op string, id backend.ID, err error) error {
	if errors.Is(err, backend.ErrNotFound) {
		return backend.Errorf(op, s.name, id, backend.ErrNotFound, "")
	}
	return err
}

// get returns the object from the tier that holds it. With PromoteOnGet, an
// object in a lower tier is also promoted in the background.
func (s *Stack) get(ctx context.Context, id backend.ID) (backend.Object, error) {
	for attempt := 0; ; attempt++ {
		e, i, info, err := s.lookupInfo("get", id, true, true)
		if err != nil {
			return nil, err
		}
		obj, err := s.tiers[i].b.Get(ctx, id)
		if err != nil {
			if errors.Is(err, backend.ErrNotFound) && attempt < retries && s.movedAway(e, i) {
				continue
			}
			return nil, s.notFound("get", id, err)
		}
		// Size and checksum are those of the bytes the tier returned, even
		// if the object was deleted and put again since the lookup.
		oi := obj.Info()
		info.Size, info.Checksum = oi.Size, oi.Checksum
		if i > 0 && s.opts.PromoteOnGet {
			s.promoteAsync(e)
		}
		return &object{Object: obj, info: info}, nil
	}
}

// object is a tier's Object with the stack's view of its metadata.
type object struct {
	backend.Object
	info backend.ObjectInfo
}

func (o *object) Info() backend.ObjectInfo { return o.info }

// openReader streams a range of the object from the tier that holds it.
func (s *Stack) openReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	for attempt := 0; ; attempt++ {
		e, i, info, err := s.lookupInfo("read", id, true, true)
		if err != nil {
			return nil, err
		}
		if _, err := backend.CheckRange("read", s.name, id, offset, length, info.Size); err != nil {
			return nil, err
		}
		r, err := s.tiers[i].b.OpenReader(ctx, id, offset, length)
		if err != nil {
			if errors.Is(err, backend.ErrNotFound) && attempt < retries && s.movedAway(e, i) {
				continue
			}
			return nil, s.notFound("read", id, err)
		}
		// As Get: size and checksum are those of the bytes the tier reads.
		ri := r.Info()
		info.Size, info.Checksum = ri.Size, ri.Checksum
		if _, ok := r.(io.WriterTo); ok {
			return &writerToReader{reader{Reader: r, info: info}}, nil
		}
		return &reader{Reader: r, info: info}, nil
	}
}

// reader is a tier's Reader with the stack's view of its metadata.
type reader struct {
	backend.Reader
	info backend.ObjectInfo
}

func (r *reader) Info() backend.ObjectInfo { return r.info }

// writerToReader keeps the tier reader's WriteTo (the memory tier's writes
// straight from the mapping: io.Copy then copies nothing).
type writerToReader struct{ reader }

func (r *writerToReader) WriteTo(w io.Writer) (int64, error) {
	return r.Reader.(io.WriterTo).WriteTo(w)
}

// objectInfo returns the object's metadata from the index (no tier I/O).
func (s *Stack) objectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	_, _, info, err := s.lookupInfo("info", id, true, true)
	return info, err
}

// remove removes the object. A pinned object is not deleted (ErrPinned). A
// move in flight is cancelled and waited for first (and no new one starts),
// so that exactly one copy remains to delete and a crash cannot bring the
// object back.
func (s *Stack) remove(ctx context.Context, id backend.ID) error {
	for {
		e, err := s.lockLive("delete", id, false)
		if err != nil {
			return err
		}
		setDeleting := func(v bool) { // s.mu held
			s.account(e, -1)
			e.deleting = v
			s.account(e, +1)
		}
		if e.pins > 0 {
			n := e.pins
			setDeleting(false)
			s.mu.Unlock()
			e.mu.Unlock()
			return backend.Errorf("delete", s.name, id, backend.ErrPinned, "%d pins", n)
		}
		setDeleting(true) // the mover and promotions leave it alone from now on
		if mv := e.mv; mv != nil {
			mv.cancel()
			s.mu.Unlock()
			e.mu.Unlock()
			select {
			case <-mv.done:
				continue // the move has ended: progress, not a retry
			case <-ctx.Done():
				s.mu.Lock()
				setDeleting(false)
				s.mu.Unlock()
				return backend.Errorf("delete", s.name, id, ctx.Err(), "waiting for a move to stop")
			}
		}
		i := e.tier
		s.mu.Unlock()
		err = s.tiers[i].b.Delete(ctx, id)
		s.mu.Lock()
		setDeleting(false)
		if err == nil || errors.Is(err, backend.ErrNotFound) {
			s.account(e, -1)
			e.gone = true
			delete(s.index, id)
			s.unstickLocked()
			err = nil
		}
		s.mu.Unlock()
		e.mu.Unlock()
		return err
	}
}

// pin adds a pin. The first pin also pins the object in the tier that holds
// it, and cancels a spill of it in flight (the pin wins). With PromoteOnPin an
// object in a lower tier is promoted in the background.
func (s *Stack) pin(ctx context.Context, id backend.ID) error {
	e, err := s.lockLive("pin", id, true)
	if err != nil {
		return err
	}
	s.addPins(e, +1)
	first, i, mv := e.pins == 1, e.tier, e.mv
	s.mu.Unlock()
	if first {
		if err := s.tiers[i].b.Pin(ctx, id); err != nil {
			s.mu.Lock()
			s.addPins(e, -1)
			s.mu.Unlock()
			e.mu.Unlock()
			return err
		}
		if mv != nil && !mv.promote {
			mv.cancel()
		}
	}
	e.mu.Unlock()
	if i > 0 && s.opts.PromoteOnPin {
		s.promoteAsync(e)
	}
	return nil
}

// unpin takes a pin away; the last one also unpins the object in its tier.
func (s *Stack) unpin(ctx context.Context, id backend.ID) error {
	e, err := s.lockLive("unpin", id, false)
	if err != nil {
		return err
	}
	if e.pins == 0 {
		s.mu.Unlock()
		e.mu.Unlock()
		return backend.Errorf("unpin", s.name, id, backend.ErrNotPinned, "")
	}
	i := e.tier
	if e.pins == 1 {
		s.mu.Unlock()
		if err := s.tiers[i].b.Unpin(ctx, id); err != nil && !errors.Is(err, backend.ErrNotPinned) {
			e.mu.Unlock()
			return err
		}
		s.mu.Lock()
	}
	s.addPins(e, -1)
	if e.pins == 0 && s.spillAmount(i) > 0 {
		s.kick()
	}
	s.mu.Unlock()
	e.mu.Unlock()
	return nil
}

// prefetch moves the object up to the fastest tier that has room for it, or
// can make room by spilling objects no more important than it, and returns
// when it is there (or when no faster tier will take it).
func (s *Stack) prefetch(ctx context.Context, id backend.ID) error {
	for attempt := 0; ; attempt++ {
		e, i, err := s.lookup("prefetch", id, true)
		if err != nil {
			return err
		}
		if i == 0 {
			return nil
		}
		s.mu.Lock()
		mv := e.mv
		s.mu.Unlock()
		if mv != nil {
			if !mv.promote {
				mv.cancel() // it is wanted: do not spill it further
			}
			select {
			case <-mv.done:
			case <-ctx.Done():
				return backend.Errorf("prefetch", s.name, id, ctx.Err(), "waiting for a move")
			}
			if attempt < retries {
				continue
			}
			return nil
		}
		done, err := s.promote(ctx, e, i)
		if err != nil || done {
			return err
		}
		if attempt >= retries {
			// Races kept moving it (or the tiers above kept refusing it): it
			// is still readable where it is.
			s.log.Debug("spill: prefetch gave up promoting", "id", id, "attempts", attempt+1)
			return nil
		}
	}
}
