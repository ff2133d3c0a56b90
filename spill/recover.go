package spill

import (
	"context"
	"errors"
	"fmt"
	"io"

	"distore/backend"
)

// rebuild fills the index from what the tiers hold, resolving objects found in
// two tiers (a move interrupted by a crash). It runs before the mover starts.
func (s *Stack) rebuild(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range s.tiers {
		var after backend.ID
		for {
			page, err := t.b.List(ctx, backend.ListOptions{After: after})
			if err != nil {
				return fmt.Errorf("spill: rebuilding the index from tier %s: %w", t.name, err)
			}
			if len(page) == 0 {
				break
			}
			for _, info := range page {
				if old, dup := s.index[info.ID]; dup {
					if old.tier == i {
						// A tier listing an ID twice is a tier bug; never treat
						// the one copy as a duplicate of itself.
						s.log.Warn("spill: tier listed an object twice", "tier", t.name, "id", info.ID)
						continue
					}
					s.resolve(ctx, old, i, info)
					continue
				}
				e := &entry{id: info.ID, info: info, tier: i, accessed: info.Accessed}
				s.clock++
				e.seq = s.clock
				s.index[info.ID] = e
				s.account(e, +1)
			}
			after = page[len(page)-1].ID
		}
	}
	return nil
}

// resolve settles an object found in tier old.tier and again in the slower
// tier i. The slower copy is read back and verified; if it is sound and the
// checksums are equal, the faster copy is deleted and the slower one kept (it
// is the more durable, and where the interrupted spill was taking it).
// Otherwise each copy is verified against its own checksum; an invalid copy
// is deleted, and two valid (or two invalid) copies are both kept (the index
// uses the slower one) and reported, since deleting either could lose data.
func (s *Stack) resolve(ctx context.Context, old *entry, i int, info backend.ObjectInfo) {
	id, fast, slow := old.id, s.tiers[old.tier], s.tiers[i]
	keepSlow, dropFast, dropSlow := true, true, false
	// The slow copy is read back before the fast one is deleted: duplicates
	// are rare (interrupted moves), and deleting the only good copy is not an
	// option.
	okSlow := s.verify(ctx, slow, info)
	if !okSlow || old.info.Checksum != info.Checksum || old.info.Size != info.Size {
		okFast := s.verify(ctx, fast, old.info)
		switch {
		case okSlow && !okFast:
		case okFast && !okSlow:
			keepSlow, dropFast, dropSlow = false, false, true
		default:
			dropFast = false
			s.log.Error("spill: object has two different copies; keeping both, using the slower tier's",
				"id", id, "fast", fast.name, "fast_crc", old.info.Checksum, "fast_ok", okFast,
				"slow", slow.name, "slow_crc", info.Checksum, "slow_ok", okSlow)
		}
	}
	if dropFast {
		if err := fast.b.Delete(ctx, id); err != nil && !errors.Is(err, backend.ErrNotFound) {
			s.log.Warn("spill: could not delete a duplicate copy", "id", id, "tier", fast.name, "err", err)
		}
	}
	if dropSlow {
		if err := slow.b.Delete(ctx, id); err != nil && !errors.Is(err, backend.ErrNotFound) {
			s.log.Warn("spill: could not delete a corrupt copy", "id", id, "tier", slow.name, "err", err)
		}
	}
	if keepSlow {
		s.account(old, -1)
		old.tier, old.info, old.accessed = i, info, info.Accessed
		s.account(old, +1)
	}
	s.met.DuplicatesResolved++
	s.log.Info("spill: resolved an object found in two tiers", "id", id, "kept", s.tiers[old.tier].name)
}

// verify reads a copy and reports whether its bytes match its checksum.
func (s *Stack) verify(ctx context.Context, t *tierState, info backend.ObjectInfo) bool {
	r, err := t.b.OpenReader(ctx, info.ID, 0, -1)
	if err != nil {
		return false
	}
	defer r.Close()
	h := backend.NewChecksum()
	n, err := io.Copy(h, r)
	return err == nil && n == info.Size && h.Sum32() == info.Checksum
}
