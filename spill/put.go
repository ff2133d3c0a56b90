package spill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"distore/backend"
)

// reserveID enters id in the index as pending, so that concurrent writers of
// one ID get ErrExists and readers do not see it until it is committed.
func (s *Stack) reserveID(op string, id backend.ID, imp int) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closedErr(op, id); err != nil {
		return nil, err
	}
	if _, ok := s.index[id]; ok {
		return nil, backend.Errorf(op, s.name, id, backend.ErrExists, "")
	}
	e := &entry{id: id, tier: -1, pending: true, info: backend.ObjectInfo{ID: id, Importance: imp}}
	s.index[id] = e
	return e, nil
}

// dropPending removes a pending entry whose write failed.
func (s *Stack) dropPending(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index[e.id] == e {
		delete(s.index, e.id)
	}
	e.gone = true
}

// release gives back a reservation of size bytes in tier i.
func (s *Stack) release(i int, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tiers[i].reserved -= size
	s.notifyLocked()
}

// commit publishes a pending entry as stored in tier i with info, releasing
// the reservation made for it.
func (s *Stack) commit(e *entry, i int, info backend.ObjectInfo, size int64) backend.ObjectInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tiers[i]
	t.reserved -= size
	t.noSpace = nil // it took a write: it has room again
	info.Size = size
	e.info = info
	e.tier = i
	e.pending = false
	s.touch(e)
	s.account(e, +1)
	if s.spillAmount(i) > 0 {
		s.kick()
	}
	out := s.infoOf(e)
	out.Accessed = info.Accessed
	return out
}

// noteFull learns from a tier's unexpected ErrFull what the tier uses beyond
// the index's bytes, so the next placement decisions are right.
func (s *Stack) noteFull(i int, size int64, err error) {
	var fe *backend.FullError
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tiers[i]
	var se *backend.SpaceError
	if errors.As(err, &se) {
		t.noSpace, t.noSpaceUntil = err, time.Now().Add(noSpaceBackoff)
		s.notifyLocked() // waiters re-decide: this tier takes nothing for now
	}
	if errors.As(err, &fe) && t.cap > 0 {
		// The tier had fe.Free bytes free (our reservation for this object is
		// released already).
		t.overhead = max(0, t.cap-fe.Free-(t.used+t.reserved))
	}
	s.kick()
}

// place picks the tier a new object of size bytes and importance imp goes to
// among tiers[0:limit], and reserves room there. It waits (bounded by ctx) for
// the mover when the fastest deserving tier can make room by spilling (see the
// package doc). refused are tiers that already refused this object. For a
// Put (put == true) the tiers' admission floors apply and failing to place is
// an ErrFull; otherwise (promotion) it returns -1 when no tier will do.
func (s *Stack) place(ctx context.Context, op string, id backend.ID, size int64, imp, limit int, refused uint64, put bool) (int, error) {
	var waitStart time.Time
	waited := false
	// Waiters for a tier queue in FIFO order, so that room the mover makes
	// goes to the longest waiter (tail latency), not to whoever wakes first.
	ticket, qtier := uint64(0), -1
	leaveQueue := func() { // s.mu held
		if qtier < 0 {
			return
		}
		t := s.tiers[qtier]
		if k := slices.Index(t.waitq, ticket); k >= 0 {
			t.waitq = slices.Delete(t.waitq, k, k+1)
			if k == 0 && len(t.waitq) > 0 {
				s.notifyLocked() // the next in line may fit now
			}
		}
		qtier = -1
	}
	defer func() {
		s.mu.Lock()
		leaveQueue()
		if waited {
			s.met.PutsWaited++
			s.met.PutWaitTime += time.Since(waitStart)
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		if err := s.closedErr(op, id); err != nil {
			s.mu.Unlock()
			return -1, err
		}
		wait, fastest := -1, -1
		choose := func(useFloor bool) int {
			for i := 0; i < limit; i++ {
				t := s.tiers[i]
				if refused&(1<<i) != 0 || (t.cap > 0 && size > t.cap) {
					continue
				}
				if fastest < 0 {
					fastest = i
				}
				if useFloor && !t.admits(imp) {
					continue
				}
				fits := t.fits(size)
				if fits && (len(t.waitq) == 0 || (qtier == i && t.waitq[0] == ticket)) {
					return i
				}
				if wait < 0 && (fits || s.canMakeRoom(i, size, imp)) {
					wait = i // room is being made, or others wait for it first
					return -1
				}
			}
			return -1
		}
		i := choose(put)
		if i < 0 && wait < 0 && put {
			i = choose(false) // every tier's floor refused it: ignore floors rather than fail
		}
		if i >= 0 {
			s.tiers[i].reserved += size
			if put && i > fastest {
				s.met.PutsBelow++
			}
			leaveQueue()
			s.mu.Unlock()
			return i, nil
		}
		if wait < 0 {
			var err error
			if put {
				err = s.fullError(op, id, size)
			}
			s.mu.Unlock()
			return -1, err
		}
		// Wait for the mover to make room in tier wait.
		t := s.tiers[wait]
		if qtier != wait {
			leaveQueue()
			s.tickets++
			ticket, qtier = s.tickets, wait
			t.waitq = append(t.waitq, ticket)
		}
		t.want += size
		s.kick()
		ch := s.changed
		s.mu.Unlock()
		if !waited {
			waited, waitStart = true, time.Now()
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
		s.mu.Lock()
		t.want -= size
		if err := ctx.Err(); err != nil {
			var full error
			if put {
				full = s.fullError(op, id, size)
			} else {
				full = backend.Errorf(op, s.name, id, backend.ErrFull, "no room made in tier %s", t.name)
			}
			s.mu.Unlock()
			return -1, fmt.Errorf("%w (waited for room: %w)", full, err)
		}
		s.mu.Unlock()
	}
}

// canMakeRoom reports whether spilling tier i can make room for size bytes of
// importance imp: it is not the last tier, the mover is not stuck on it, and
// free bytes, bytes already leaving and spillable bytes no more important than
// the object add up. Called with s.mu held.
func (s *Stack) canMakeRoom(i int, size int64, imp int) bool {
	t := s.tiers[i]
	if i == len(s.tiers)-1 || t.stuck || t.cap <= 0 || t.outOfSpace() {
		return false
	}
	return t.free()+t.leaving+t.spillableUpTo(imp) >= size
}

// fullError describes why size bytes fit nowhere: the free bytes and pinned
// bytes of the tiers that could ever hold the object, and the largest
// capacity (so an object larger than every tier is ErrTooLarge). Called with
// s.mu held.
func (s *Stack) fullError(op string, id backend.ID, size int64) error {
	var free, capacity, pinned int64
	var noSpace []error
	for _, t := range s.tiers {
		if t.outOfSpace() {
			noSpace = append(noSpace, t.noSpace)
		}
		if t.cap <= 0 { // an unbounded tier that refused: not too large, just full
			capacity = max(capacity, size)
			continue
		}
		capacity = max(capacity, t.cap)
		if size <= t.cap {
			free += t.free()
			pinned += t.pinned
		}
	}
	fe := backend.NewFullError(op, s.name, id, size, free, capacity, pinned)
	if len(noSpace) > 0 { // name the full file systems
		return fmt.Errorf("%w (%w)", fe, errors.Join(noSpace...))
	}
	return fe
}

// put stores data in the fastest tier that accepts it (see the package doc),
// waiting for the mover, bounded by ctx, when that tier is full.
func (s *Stack) put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.ObjectInfo{}, backend.Errorf("put", s.name, id, err, "")
	}
	e, err := s.reserveID("put", id, opts.Importance)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	size := int64(len(data))
	var r refusals
	for {
		i, err := s.place(ctx, "put", id, size, opts.Importance, len(s.tiers), r.refused, true)
		if err != nil {
			s.dropPending(e)
			return backend.ObjectInfo{}, err
		}
		info, err := s.tiers[i].b.Put(ctx, id, data, opts)
		if err == nil {
			return s.commit(e, i, info, size), nil
		}
		s.release(i, size)
		if !s.refusal(i, size, err, &r) {
			s.dropPending(e)
			return backend.ObjectInfo{}, err
		}
	}
}

// refusals tracks the tiers that refused a new object.
type refusals struct {
	refused uint64 // tiers not to try again
	full    [64]uint8
}

// maxFullRetries is how often a tier's ErrFull, when the index thought the
// object fitted, is taken as "learn the tier's overhead and decide again"
// before the tier is skipped for this object (fragmentation can keep a tier
// refusing what its free bytes would hold).
const maxFullRetries = 2

// refusal handles a tier's ErrTooLarge or ErrFull for a new object. ErrFull
// teaches the stack the tier's overhead, so the next decision waits for room
// or goes lower; a tier that keeps refusing, or says the object is too large,
// is skipped. It reports whether err was such a refusal.
func (s *Stack) refusal(i int, size int64, err error, r *refusals) bool {
	switch {
	case errors.Is(err, backend.ErrTooLarge):
		r.refused |= 1 << i
	case errors.Is(err, backend.ErrFull):
		s.noteFull(i, size, err)
		if r.full[i]++; r.full[i] > maxFullRetries {
			r.refused |= 1 << i
		}
	default:
		return false
	}
	return true
}

// openWriter places the object as Put does (size is known up front) and
// streams it into that tier; Close publishes it in the stack.
func (s *Stack) openWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	if err := backend.CheckSize("write", s.name, id, size); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf("write", s.name, id, err, "")
	}
	e, err := s.reserveID("write", id, opts.Importance)
	if err != nil {
		return nil, err
	}
	var r refusals
	for {
		i, err := s.place(ctx, "write", id, size, opts.Importance, len(s.tiers), r.refused, true)
		if err != nil {
			s.dropPending(e)
			return nil, err
		}
		w, err := s.tiers[i].b.OpenWriter(ctx, id, size, opts)
		if err == nil {
			return &writer{s: s, e: e, tier: i, w: w, ctx: ctx, size: size, opts: opts}, nil
		}
		s.release(i, size)
		if !s.refusal(i, size, err, &r) {
			s.dropPending(e)
			return nil, err
		}
	}
}

// writer is the stack's Writer: the tier's, plus publishing in the index.
type writer struct {
	s    *Stack
	e    *entry
	tier int
	w    backend.Writer
	ctx  context.Context
	size int64
	opts backend.PutOptions

	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) { return w.w.Write(p) }

// Close publishes the object in the tier, then in the stack's index.
func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return backend.Errorf("write", w.s.name, w.e.id, backend.ErrClosed, "writer already closed")
	}
	w.done = true
	if err := w.w.Close(); err != nil {
		w.s.release(w.tier, w.size)
		w.s.dropPending(w.e)
		return err
	}
	info, err := w.s.tiers[w.tier].b.ObjectInfo(context.WithoutCancel(w.ctx), w.e.id)
	if err != nil {
		// The tier published it; record what we know (checksum 0: moves of it
		// are not verified).
		w.s.log.Warn("spill: no info for a committed object", "tier", w.s.tiers[w.tier].name, "id", w.e.id, "err", err)
		info = backend.ObjectInfo{ID: w.e.id, Importance: w.opts.Importance, Created: w.opts.Created}
		if info.Created.IsZero() {
			info.Created = time.Now()
		}
	}
	w.s.commit(w.e, w.tier, info, w.size)
	return nil
}

// Abort discards the write; after Close it does nothing.
func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	err := w.w.Abort()
	w.s.release(w.tier, w.size)
	w.s.dropPending(w.e)
	return err
}

// maxImportance is an importance above every object's, for "any victim".
const maxImportance = math.MaxInt
