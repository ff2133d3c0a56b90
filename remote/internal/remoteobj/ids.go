package remoteobj

import (
	"hash/fnv"
	"sync"

	"distore/backend"
)

// IDLocks serialise the commit, delete and pin of one ID within this process
// (an ID hashes to one of 256 mutexes). The zero value is ready.
type IDLocks struct{ m [256]sync.Mutex }

// Lock locks id's mutex and returns its unlock.
func (l *IDLocks) Lock(id backend.ID) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &l.m[h.Sum32()%uint32(len(l.m))]
	m.Lock()
	return m.Unlock
}

// Pin adds a pin to id in space, under id's lock, once size (a HEAD or a
// metadata read of the object) says it exists.
func (l *IDLocks) Pin(space *Space, id backend.ID, size func() (int64, error)) error {
	unlock := l.Lock(id)
	defer unlock()
	n, err := size()
	if err != nil {
		return err
	}
	space.Pin(id, n)
	return nil
}

// Unpin takes a pin from id in space, under id's lock: ErrNotPinned (op, tier)
// if it has none, or exists's error (ErrNotFound) if the object is not there.
func (l *IDLocks) Unpin(space *Space, op, tier string, id backend.ID, exists func() error) error {
	unlock := l.Lock(id)
	defer unlock()
	if space.Unpin(id) {
		return nil
	}
	if err := exists(); err != nil {
		return err
	}
	return backend.Errorf(op, tier, id, backend.ErrNotPinned, "")
}
