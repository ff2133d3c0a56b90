package spill

import (
	"context"
	"sync"

	"distore/backend"
)

// hold keeps the object where it is until the returned release is called: the
// mover neither spills nor promotes it, and a move of it in flight is
// cancelled (or undone). Unlike a pin, a hold does not stop a Delete: the
// server's local socket holds every object a client reads in place, and a
// delete meanwhile only frees the bytes at the last release (the tier defers
// it). release may be called more than once; only the first counts.
func (s *Stack) hold(ctx context.Context, id backend.ID) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, backend.Errorf("hold", s.name, id, err, "")
	}
	e, err := s.lockLive("hold", id, true)
	if err != nil {
		return nil, err
	}
	s.account(e, -1)
	e.holds++
	s.account(e, +1)
	mv := e.mv
	s.mu.Unlock()
	e.mu.Unlock()
	if mv != nil {
		mv.cancel() // runMove sees the hold at the switch and undoes the copy
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.account(e, -1)
			e.holds--
			s.account(e, +1)
			if e.holds == 0 && !e.gone && e.tier >= 0 && s.spillAmount(e.tier) > 0 {
				s.kick()
			}
		})
	}, nil
}

// Unwrap returns the tier's writer, so that a caller can reach what only the
// tier offers (the memory tier's in-place fill by a local client).
func (w *writer) Unwrap() backend.Writer { return w.w }
