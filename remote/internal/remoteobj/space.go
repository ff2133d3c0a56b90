// Package remoteobj holds the bookkeeping that the Remote tiers (remote/s3
// and remote/ceph) share, whatever their store: capacity reservations, the
// used and object counters, the start of a Put (its data's checks, its
// reservation, its creation time) and the byte and CRC-32C accounting of a
// streamed write. Their pins are counted by backend.Wrap, and their ID,
// context and lifecycle checks are its too.
package remoteobj

import (
	"sync/atomic"

	"distore/backend"
	"distore/levels"
)

// Space counts what a tier holds: stored bytes and objects, and bytes
// reserved by writes in flight. Set Tier and Capacity before use and do not
// copy it after.
type Space struct {
	// Tier names the tier in errors and stats.
	Tier string
	// Capacity is the bytes the tier may hold; 0 means unbounded.
	Capacity int64

	// Used and Objects count the tier's stored bytes and objects.
	Used, Objects atomic.Int64
	reserved      atomic.Int64
}

// Added counts a stored object of size bytes.
func (s *Space) Added(size int64) {
	s.Used.Add(size)
	s.Objects.Add(1)
}

// Removed uncounts a deleted object of size bytes.
func (s *Space) Removed(size int64) {
	s.Used.Add(-size)
	s.Objects.Add(-1)
}

// Reserve takes n bytes of the capacity for a write, if a capacity is set;
// an ErrFull error (op, id) when they are not free (its Pinned is filled in
// by backend.Wrap, which counts the pins). Unreserve gives them back.
func (s *Space) Reserve(op string, id backend.ID, n int64) error {
	c := s.Capacity
	if c <= 0 {
		return nil
	}
	if n > c {
		return backend.NewFullError(op, s.Tier, id, n, max(0, c-s.Used.Load()-s.reserved.Load()), c, 0)
	}
	if r := s.reserved.Add(n); s.Used.Load()+r > c {
		s.reserved.Add(-n)
		return backend.NewFullError(op, s.Tier, id, n, max(0, c-s.Used.Load()-r+n), c, 0)
	}
	return nil
}

// Unreserve gives back n bytes that Reserve took.
func (s *Space) Unreserve(n int64) {
	if s.Capacity > 0 {
		s.reserved.Add(-n)
	}
}

// Stats reports the counters of a tier at level (its pins are the
// wrapper's to add).
func (s *Space) Stats(level levels.Level) backend.Stats {
	return backend.Stats{Tier: s.Tier, Level: level, Capacity: s.Capacity,
		Used: s.Used.Load(), Objects: s.Objects.Load()}
}
