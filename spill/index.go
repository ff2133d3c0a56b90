package spill

import (
	"context"
	"sync"
	"time"

	"distore/backend"
	"distore/levels"
)

// entry is one object in the stack's index.
//
// Fields are guarded by Stack.mu. mu serialises the transitions that also
// touch a tier — pin and unpin calls, the switch at the end of a move, a
// delete — so that, e.g., a Pin cannot land in a tier a move is deleting from.
// Lock order: entry.mu before Stack.mu.
type entry struct {
	mu   sync.Mutex
	id   backend.ID
	info backend.ObjectInfo // Size, Importance, Created, Checksum as the tier reported them

	tier     int  // index into Stack.tiers; -1 while pending
	pending  bool // being written, invisible
	gone     bool // removed from the index
	deleting bool // a Delete is removing it from its tier
	pins     int
	holds    int    // local clients reading it in place (Hold): never moved while > 0
	seq      uint64 // last use, a logical clock: LRU order
	accessed time.Time
	mv       *move // the move in flight, if any
}

// move is a move of one object between tiers.
type move struct {
	src, dst int
	promote  bool
	size     int64
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

// spillable reports whether the mover may pick e as a victim.
func (e *entry) spillable() bool {
	return !e.pending && !e.gone && !e.deleting && e.pins == 0 && e.holds == 0 && e.mv == nil
}

// tierState is the stack's view of one tier, kept from the index (no I/O).
type tierState struct {
	// b is the tier as the stack calls it: its Trusted view, since every
	// ID the stack passes was validated at the stack's door (or came from a
	// tier's List). given is the tier as NewStack got it (Tiers).
	b     backend.Backend
	given backend.Backend
	name  string
	level levels.Level
	cap   int64 // 0: unbounded
	high  float64
	low   float64

	used     int64 // committed bytes in the index on this tier, moving-out included
	objects  int64
	reserved int64 // bytes being written into the tier (puts, move destinations)
	leaving  int64 // committed bytes being moved out
	pinned   int64
	pinnedN  int64
	// spillable holds the bytes of spillable objects by importance, so a Put can
	// tell cheaply whether spilling could make room for it.
	spillable map[int]int64
	entries   map[*entry]struct{}
	// overhead is what the tier uses beyond the index's bytes (allocator
	// rounding, metadata), learnt from the tier's own ErrFull and Stats.
	overhead int64

	want     int64    // bytes that waiting Puts and Prefetches need here
	waitq    []uint64 // tickets of the waiters, first come first served
	pressure int64    // bytes a blocked spill from the tier above needs here
	stuck    bool     // the mover cannot spill this tier: no tier below has room
	floor    int      // admission floor, when hasFloor (see the package doc)
	hasFloor bool
	// noSpace is the tier's last refusal for lack of file-system space (a
	// *backend.SpaceError); until noSpaceUntil the tier is taken as full,
	// so puts fail at once (naming the file system) instead of waiting for
	// spills that cannot land.
	noSpace      error
	noSpaceUntil time.Time
}

// noSpaceBackoff is how long a tier that refused for lack of file-system
// space is taken as full before it is tried again.
const noSpaceBackoff = time.Second

// outOfSpace reports whether the tier refused lately for lack of file-system space.
func (t *tierState) outOfSpace() bool {
	return t.noSpace != nil && time.Now().Before(t.noSpaceUntil)
}

// occupied is the bytes the tier holds or is about to hold.
func (t *tierState) occupied() int64 { return t.used + t.reserved + t.overhead }

// free is the room left in a bounded tier (never negative).
func (t *tierState) free() int64 {
	if t.cap <= 0 {
		return 1 << 62
	}
	return max(0, t.cap-t.occupied())
}

// fits reports whether size bytes fit in the tier now.
func (t *tierState) fits(size int64) bool {
	if t.outOfSpace() {
		return false
	}
	return t.cap <= 0 || t.occupied()+size <= t.cap
}

// fitsUnder reports whether size bytes fit now without passing the high
// watermark (for promotions that should not cause spills).
func (t *tierState) fitsUnder(size int64) bool {
	return t.cap <= 0 || float64(t.occupied()+size) <= t.high*float64(t.cap)
}

// spillableUpTo returns the bytes of spillable objects of importance <= imp.
func (t *tierState) spillableUpTo(imp int) int64 {
	var n int64
	for i, b := range t.spillable {
		if i <= imp {
			n += b
		}
	}
	return n
}

// admits reports whether the floor lets an object of importance imp in,
// lifting the floor first when the tier has drained.
func (t *tierState) admits(imp int) bool {
	if !t.hasFloor {
		return true
	}
	if t.cap > 0 && float64(t.occupied()) <= (2*t.low-t.high)*float64(t.cap) {
		t.hasFloor = false
		return true
	}
	return imp >= t.floor
}

// account adds (sign +1) or removes (sign -1) e's contribution to its tier's
// counters. Callers bracket every change of e's state with account(e, -1) and
// account(e, +1) under Stack.mu.
func (s *Stack) account(e *entry, sign int64) {
	if e.pending || e.gone || e.tier < 0 {
		return
	}
	t := s.tiers[e.tier]
	n := e.info.Size
	t.used += sign * n
	t.objects += sign
	if sign > 0 {
		t.entries[e] = struct{}{}
	} else {
		delete(t.entries, e)
	}
	if e.pins > 0 {
		t.pinned += sign * n
		t.pinnedN += sign
	}
	if e.mv != nil && e.mv.src == e.tier {
		t.leaving += sign * n
	}
	if e.spillable() {
		imp := e.info.Importance
		t.spillable[imp] += sign * n
		if t.spillable[imp] == 0 {
			delete(t.spillable, imp)
		}
	}
}

// touch records a use of e. Called with s.mu held.
func (s *Stack) touch(e *entry) {
	s.clock++
	e.seq = s.clock
	e.accessed = time.Now()
}

// infoOf returns e's metadata as the stack reports it. Called with s.mu held.
func (s *Stack) infoOf(e *entry) backend.ObjectInfo {
	info := e.info
	info.ID = e.id
	t := s.tiers[e.tier]
	info.Tier = t.name
	info.Level = t.level
	info.Pins = e.pins
	if !e.accessed.IsZero() {
		info.Accessed = e.accessed
	}
	return info
}

// notifyLocked wakes everything waiting for room. Called with s.mu held.
func (s *Stack) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// unstickLocked clears the stuck marks after room appeared in some tier, and
// wakes the mover and the waiters. Called with s.mu held.
func (s *Stack) unstickLocked() {
	for _, t := range s.tiers {
		t.stuck = false
	}
	s.notifyLocked()
	s.kick()
}
