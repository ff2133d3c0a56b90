// Package remoteobj holds the bookkeeping that the Remote tiers (remote/s3
// and remote/ceph) share, whatever their store: capacity reservations, the
// used and object counters, in-process pins, the checks of a Put's data and
// the byte and CRC-32C accounting of a streamed write.
package remoteobj

import (
	"sync"
	"sync/atomic"

	"distore/backend"
	"distore/levels"
)

// Space counts what a tier holds: stored bytes and objects, bytes reserved
// by writes in flight, and pins. Set Tier and Capacity before use and do not
// copy it after.
type Space struct {
	// Tier names the tier in errors and stats.
	Tier string
	// Capacity is the bytes the tier may hold; 0 means unbounded.
	Capacity int64

	// Used and Objects count the tier's stored bytes and objects.
	Used, Objects atomic.Int64
	reserved      atomic.Int64

	mu   sync.Mutex
	pins map[backend.ID]pin
}

type pin struct {
	n    int
	size int64
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
// an ErrFull error (op, id) when they are not free. Unreserve gives them back.
func (s *Space) Reserve(op string, id backend.ID, n int64) error {
	c := s.Capacity
	if c <= 0 {
		return nil
	}
	if n > c {
		return backend.NewFullError(op, s.Tier, id, n, max(0, c-s.Used.Load()-s.reserved.Load()), c, s.pinned())
	}
	if r := s.reserved.Add(n); s.Used.Load()+r > c {
		s.reserved.Add(-n)
		return backend.NewFullError(op, s.Tier, id, n, max(0, c-s.Used.Load()-r+n), c, s.pinned())
	}
	return nil
}

// Unreserve gives back n bytes that Reserve took.
func (s *Space) Unreserve(n int64) {
	if s.Capacity > 0 {
		s.reserved.Add(-n)
	}
}

// pinned is the bytes of the pinned objects.
func (s *Space) pinned() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, p := range s.pins {
		n += p.size
	}
	return n
}

// Pins returns the number of pins on id.
func (s *Space) Pins(id backend.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[id].n
}

// Pin adds a pin to id, an object of size bytes.
func (s *Space) Pin(id backend.ID, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pins == nil {
		s.pins = map[backend.ID]pin{}
	}
	p := s.pins[id]
	s.pins[id] = pin{n: p.n + 1, size: size}
}

// Unpin takes a pin from id; false if it had none.
func (s *Space) Unpin(id backend.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pins[id]
	switch {
	case ok && p.n > 1:
		s.pins[id] = pin{n: p.n - 1, size: p.size}
	case ok:
		delete(s.pins, id)
	}
	return ok
}

// Stats reports the counters of a tier at level.
func (s *Space) Stats(level levels.Level) backend.Stats {
	st := backend.Stats{Tier: s.Tier, Level: level, Capacity: s.Capacity,
		Used: s.Used.Load(), Objects: s.Objects.Load()}
	s.mu.Lock()
	for _, p := range s.pins {
		st.Pinned += p.size
		st.PinnedObjects++
	}
	s.mu.Unlock()
	return st
}
