package spill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"distore/backend"
)

// testHookCopied, when set by a test, runs after a move's copy is complete and
// before the index switches (the window in which a crash leaves two copies).
var testHookCopied func()

// testHookSwitched, when set by a test, runs after a move switched the index
// and before it deletes the source copy.
var testHookSwitched func()

// wholeCopyMax is the largest object a move copies with Get and Put; larger
// ones are streamed (OpenReader → OpenWriter) so memory stays bounded.
const wholeCopyMax = 8 << 20

// errUndone is what runMove returns when a Pin or Delete won the race and the
// move was abandoned.
var errUndone = errors.New("move undone")

// kick wakes the mover without blocking.
func (s *Stack) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

// planLoop is the mover: it plans spills when kicked (a Put, an Unpin, the end
// of a move) and every tick, to pick up anything a kick missed.
func (s *Stack) planLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastStats time.Time
	for {
		select {
		case <-s.closing:
			return
		case <-s.kickCh:
		case <-tick.C:
		}
		if time.Since(lastStats) > 100*time.Millisecond {
			s.refreshOverhead()
			lastStats = time.Now()
		}
		s.plan()
	}
}

// refreshOverhead learns from the bounded tiers' Stats what they use beyond
// the index's bytes (record headers, rounding), so placement and watermarks
// count it. The figure is approximate (Puts and moves run meanwhile) and is
// refreshed often.
func (s *Stack) refreshOverhead() {
	for _, t := range s.tiers {
		if t.cap <= 0 {
			continue
		}
		st, err := t.b.Stats(s.bg)
		if err != nil {
			continue
		}
		s.mu.Lock()
		t.overhead = max(0, st.Used-(t.used+t.reserved))
		s.mu.Unlock()
	}
}

// spillAmount is the bytes the mover should move out of tier i now: down to
// the low watermark once above the high one, and enough for the Puts waiting
// for room and the spills from above blocked on this tier. Called with s.mu
// held.
func (s *Stack) spillAmount(i int) int64 {
	t := s.tiers[i]
	if i == len(s.tiers)-1 || t.cap <= 0 {
		return 0
	}
	occ := t.occupied() - t.leaving
	var amt int64
	if float64(occ) > t.high*float64(t.cap) {
		amt = occ - int64(t.low*float64(t.cap))
	}
	if need := occ + t.want + t.pressure - t.cap; need > amt {
		amt = need
	}
	return amt
}

// canSpill reports whether the mover could spill something from tier i.
// Called with s.mu held.
func (s *Stack) canSpill(i int) bool {
	t := s.tiers[i]
	return !t.stuck && len(t.spillable) > 0
}

// plan starts the spills each tier needs, fastest tier first, as far as the
// move slots allow. Called by the mover only.
func (s *Stack) plan() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	wasStuck := 0
	for _, t := range s.tiers {
		if t.stuck {
			wasStuck++
		}
		t.pressure = 0
		t.stuck = false
	}
	defer func() {
		n := 0
		for _, t := range s.tiers {
			if t.stuck {
				n++
			}
		}
		if n != wasStuck {
			s.notifyLocked() // waiters re-decide: wait, go lower, or fail
		}
	}()
	for i := 0; i < len(s.tiers)-1; i++ {
		t := s.tiers[i]
		amt := s.spillAmount(i)
		if amt <= 0 {
			continue
		}
		for _, v := range s.pickVictims(i, s.opts.MaxConcurrentMoves) {
			if amt <= 0 {
				break
			}
			size := v.info.Size
			dst := s.pickDest(i, size)
			if dst < 0 {
				break
			}
			if !s.sem.TryAcquire(1) {
				return // every slot is busy; the end of a move kicks the mover again
			}
			s.tiers[dst].reserved += size
			if imp := v.info.Importance; !t.hasFloor || imp > t.floor {
				t.floor, t.hasFloor = imp, true
			}
			mv := s.startLocked(v, i, dst, false)
			go s.runMove(v, mv)
			amt -= size
		}
	}
}

// pickVictims returns up to k spillable objects of tier i, least important
// first, then least recently used. Called with s.mu held.
func (s *Stack) pickVictims(i, k int) []*entry {
	less := func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.info.Importance, b.info.Importance), cmp.Compare(a.seq, b.seq))
	}
	var out []*entry
	for e := range s.tiers[i].entries {
		if !e.spillable() {
			continue
		}
		if len(out) == k && less(e, out[k-1]) >= 0 {
			continue
		}
		at, _ := slices.BinarySearchFunc(out, e, less)
		out = slices.Insert(out, at, e)
		if len(out) > k {
			out = out[:k]
		}
	}
	return out
}

// pickDest returns the tier below i that a spilled object of size bytes goes
// to: the first with room now. If none has room but one can make room, that
// tier is put under pressure and -1 returned; if none can, tier i is marked
// stuck. Called with s.mu held.
func (s *Stack) pickDest(i int, size int64) int {
	for j := i + 1; j < len(s.tiers); j++ {
		u := s.tiers[j]
		if u.cap > 0 && size > u.cap {
			continue
		}
		if u.fits(size) {
			return j
		}
		if s.canMakeRoom(j, size, maxImportance) {
			u.pressure = max(u.pressure, size)
			return -1
		}
	}
	s.tiers[i].stuck = true
	return -1
}

// startLocked marks e as moving from src to dst (room in dst already
// reserved, a move slot already taken). Called with s.mu held.
func (s *Stack) startLocked(e *entry, src, dst int, promote bool) *move {
	ctx, cancel := context.WithCancel(s.bg)
	mv := &move{src: src, dst: dst, promote: promote, size: e.info.Size, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	s.account(e, -1)
	e.mv = mv
	s.account(e, +1)
	s.moving++
	s.wg.Add(1)
	return mv
}

// runMove copies e to mv.dst, switches the index and deletes the source — or
// undoes the copy when a Pin (for a spill), a Delete or Teardown won the race.
// It releases the move slot and the reservation.
func (s *Stack) runMove(e *entry, mv *move) error {
	defer s.wg.Done()
	defer s.sem.Release(1)
	defer mv.cancel()
	start := time.Now()
	src, dst := s.tiers[mv.src], s.tiers[mv.dst]
	copied, err := s.copyObject(mv.ctx, e, mv)
	if testHookCopied != nil && copied {
		testHookCopied()
	}

	e.mu.Lock() // no Pin, Unpin or Delete of e until the switch is done
	defer e.mu.Unlock()
	defer close(mv.done)
	s.mu.Lock()
	dst.reserved -= mv.size
	if err == nil && (e.gone || mv.ctx.Err() != nil || (!mv.promote && e.pins > 0) || e.holds > 0) {
		err = errUndone
	}
	pins := e.pins
	if err == nil && pins > 0 {
		// A pinned object (promoted) must be pinned in its new tier before the
		// switch, so the tier never holds it unpinned.
		s.mu.Unlock()
		err = dst.b.Pin(context.Background(), e.id)
		s.mu.Lock()
	}
	// e.mv stays set until the copy that is given up is deleted: a new move of
	// e must not start meanwhile, or it could adopt that copy (ErrExists in
	// copyObject) just before it is deleted.
	finish := func() { // s.mu held
		s.account(e, -1)
		e.mv = nil
		s.account(e, +1)
		s.moving--
		s.unstickLocked()
	}
	if err != nil {
		s.mu.Unlock()
		if copied {
			if derr := dst.b.Delete(context.Background(), e.id); derr != nil && !errors.Is(derr, backend.ErrNotFound) {
				s.orphan(dst, e.id, derr)
			}
		}
		switch {
		case errors.Is(err, errUndone) || mv.ctx.Err() != nil:
			err = errUndone
		case errors.Is(err, backend.ErrFull):
			// The tier counts more than the index (record headers, space
			// held by open Objects): learn it; the next plan retries.
			s.noteFull(mv.dst, mv.size, err)
			err = errUndone
		default:
			s.log.Warn("spill: move failed; the object stays", "id", e.id, "from", src.name, "to", dst.name, "err", err)
		}
		s.mu.Lock()
		if errors.Is(err, errUndone) {
			s.met.MovesUndone++
		} else {
			s.met.MovesFailed++
		}
		finish()
		s.mu.Unlock()
		return err
	}
	s.account(e, -1)
	e.tier = mv.dst // reads go to the new copy from now on
	s.tiers[mv.dst].noSpace = nil
	s.account(e, +1)
	if mv.promote {
		s.met.PromotedObjects++
		s.met.PromotedBytes += mv.size
	} else {
		s.met.SpilledObjects++
		s.met.SpilledBytes += mv.size
	}
	s.met.MoveTime += time.Since(start)
	s.mu.Unlock()

	if testHookSwitched != nil {
		testHookSwitched()
	}
	if pins > 0 {
		if uerr := src.b.Unpin(context.Background(), e.id); uerr != nil && !errors.Is(uerr, backend.ErrNotPinned) {
			s.log.Warn("spill: unpin of a moved object's source", "id", e.id, "tier", src.name, "err", uerr)
		}
	}
	if derr := src.b.Delete(context.Background(), e.id); derr != nil && !errors.Is(derr, backend.ErrNotFound) {
		s.orphan(src, e.id, derr)
	}
	s.mu.Lock()
	finish()
	s.mu.Unlock()
	return nil
}

// orphan records a copy left behind by a move: the index does not point at
// it, and the next Open resolves it as a duplicate.
func (s *Stack) orphan(t *tierState, id backend.ID, err error) {
	s.log.Warn("spill: stale copy left after a move (Open resolves it)", "id", id, "tier", t.name, "err", err)
	s.mu.Lock()
	s.met.OrphanCopies++
	s.mu.Unlock()
}

// copyObject copies e from mv.src to mv.dst — whole up to wholeCopyMax,
// streamed beyond — the destination verifying the checksum. copied reports
// that the destination holds a complete copy.
func (s *Stack) copyObject(ctx context.Context, e *entry, mv *move) (copied bool, err error) {
	s.mu.Lock()
	info := e.info
	s.mu.Unlock()
	src, dst := s.tiers[mv.src].b, s.tiers[mv.dst].b
	opts := backend.PutOptions{Importance: info.Importance, Checksum: info.Checksum, Created: info.Created}
	adopt := func(err error) (bool, error) {
		// A copy left by a failed delete: use it if it is the same object.
		// (No other move of e can be deleting it: e.mv is held until a move's
		// given-up copy is gone.)
		di, ierr := dst.ObjectInfo(ctx, e.id)
		if ierr == nil && di.Size == info.Size && di.Checksum == info.Checksum {
			return true, nil
		}
		return false, fmt.Errorf("a different copy is already in tier %s: %w", s.tiers[mv.dst].name, err)
	}
	if info.Size <= wholeCopyMax {
		// Small enough to copy whole: one Get (zero-copy out of a memory
		// tier) and one Put (one transaction in the disk tier) beat a
		// streamed write's separate chunk and manifest commits.
		obj, err := src.Get(ctx, e.id)
		if err != nil {
			return false, err
		}
		defer obj.Close()
		_, err = dst.Put(ctx, e.id, obj.Bytes(), opts)
		if errors.Is(err, backend.ErrExists) {
			return adopt(err)
		}
		return err == nil, err
	}
	r, err := src.OpenReader(ctx, e.id, 0, -1)
	if err != nil {
		return false, err
	}
	defer r.Close()
	w, err := dst.OpenWriter(ctx, e.id, info.Size, opts)
	if errors.Is(err, backend.ErrExists) {
		return adopt(err)
	}
	if err != nil {
		return false, err
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	if _, err := io.CopyBuffer(w, r, *bp); err != nil {
		_ = w.Abort()
		return false, err
	}
	if err := w.Close(); err != nil {
		return false, err
	}
	return true, nil
}

// promote moves e up from tier from to the fastest tier above it that has or
// can make room, waiting for that room and for the move, bounded by ctx. done
// reports that the object is where it can be; false with a nil error means a
// race moved it meanwhile and the caller should look again.
func (s *Stack) promote(ctx context.Context, e *entry, from int) (done bool, err error) {
	s.mu.Lock()
	size, imp := e.info.Size, e.info.Importance
	s.mu.Unlock()
	j, err := s.place(ctx, "prefetch", e.id, size, imp, from, 0, false)
	if err != nil {
		return false, err
	}
	if j < 0 {
		return true, nil // no faster tier will take it: it stays where it is
	}
	if err := s.sem.Acquire(ctx, 1); err != nil {
		s.release(j, size)
		return false, backend.Errorf("prefetch", s.name, e.id, err, "waiting for a move slot")
	}
	s.mu.Lock()
	if s.closed || e.gone || e.deleting || e.mv != nil || e.tier != from || e.holds > 0 {
		s.tiers[j].reserved -= size
		s.notifyLocked()
		closed := s.closedErr("prefetch", e.id)
		s.mu.Unlock()
		s.sem.Release(1)
		return false, closed
	}
	mv := s.startLocked(e, from, j, true)
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, mv.cancel)
	defer stop()
	if err := s.runMove(e, mv); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, backend.Errorf("prefetch", s.name, e.id, cerr, "")
		}
		if errors.Is(err, errUndone) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// promoteAsync starts a background promotion of e to the fastest tier above it
// that has room under its high watermark and admits it, if a move slot is
// free. It never waits.
func (s *Stack) promoteAsync(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || e.gone || e.pending || e.deleting || e.mv != nil || e.tier <= 0 || e.holds > 0 {
		return
	}
	size, imp := e.info.Size, e.info.Importance
	for j := 0; j < e.tier; j++ {
		t := s.tiers[j]
		if (t.cap > 0 && size > t.cap) || !t.admits(imp) || !t.fitsUnder(size) {
			continue
		}
		if !s.sem.TryAcquire(1) {
			return
		}
		t.reserved += size
		mv := s.startLocked(e, e.tier, j, true)
		go s.runMove(e, mv)
		return
	}
}
