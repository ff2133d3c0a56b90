package shmem

import (
	"sync/atomic"
	"time"

	"distore/backend"
	"distore/levels"
)

// object is what Get returns: the object's bytes in the mapping and a
// reference that keeps them there until Close. It is leaner than
// backend.NewBytesObject (one small allocation, Info built on demand) because
// Get is the hot path of the memory tier.
type object struct {
	s *Store
	e *entry // for Close only: after it, the store may reuse the entry
	m *mapping
	// A snapshot of the metadata at Get, so that Info works after Close.
	id         backend.ID
	data       []byte
	importance int
	pins       int
	created    int64
	accessed   int64
	checksum   uint32
	closed     atomic.Bool
}

// Info is the object's metadata at the time of Get.
func (o *object) Info() backend.ObjectInfo {
	return backend.ObjectInfo{ID: o.id, Size: int64(len(o.data)), Level: levels.Memory, Tier: Name,
		Importance: o.importance, Pins: o.pins, Created: time.Unix(0, o.created),
		Accessed: time.Unix(0, o.accessed), Checksum: o.checksum}
}

// Bytes returns the object's bytes, aliasing the shared mapping: do not write
// to them, nor use them after Close.
func (o *object) Bytes() []byte { return o.data }

// ReadAt copies from the object's bytes at off, as io.ReaderAt; it fails
// after Close rather than read memory that may be reused.
func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if o.closed.Load() {
		return 0, backend.Errorf("read", Name, o.id, backend.ErrClosed, "object closed")
	}
	return backend.ReadAtBytes(Name, o.id, o.data, p, off)
}

// Close releases the object; its space is freed if it was deleted meanwhile.
// A second Close does nothing.
func (o *object) Close() error {
	if o.closed.CompareAndSwap(false, true) {
		o.s.closeRef(o.e, o.m)
	}
	return nil
}
