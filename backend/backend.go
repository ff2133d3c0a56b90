// Package backend defines the contract every distore storage tier keeps — the
// Backend interface, object metadata, IDs, options and sentinel errors — and the
// registry through which tiers are found by name ("memory", "disk", "s3", ...).
//
// A tier registers itself in its package's init, as database/sql drivers do:
//
//	import _ "distore/shmem"
//	b, err := backend.Open(ctx, "memory", backend.Config{"capacity": "1GiB"})
//
// Every implementation passes the conformance suite in backend/backendtest.
package backend

import (
	"context"
	"io"
	"time"

	"distore/levels"
)

// Backend is one storage tier, or a stack of tiers that behaves as one.
//
// Objects are immutable once committed: Put and OpenWriter…Close publish
// atomically, and a failed or cancelled write leaves nothing behind. Every
// method takes a context first, honours its cancellation, and is safe for
// concurrent use. Every error wraps one of the sentinel errors of this package
// and names the tier and, where there is one, the object.
type Backend interface {
	// Setup prepares the tier for use (maps memory, opens files, connects).
	// A tier that cannot run here returns an error wrapping ErrUnavailable.
	Setup(ctx context.Context) error
	// Teardown releases what Setup took. After it every method returns ErrClosed.
	// Objects handed out by Get stay valid until they are closed.
	Teardown(ctx context.Context) error
	// Level is the set of levels this backend stores objects at.
	Level() levels.Level

	// Put stores data under id, copying it at most once. It fails with ErrExists
	// if id is taken, ErrTooLarge if the object can never fit, ErrFull if it does
	// not fit now.
	Put(ctx context.Context, id ID, data []byte, opts PutOptions) (ObjectInfo, error)
	// Get returns the object's bytes, zero-copy where the tier allows it. The
	// bytes stay valid until the Object is closed, even if the object is deleted
	// or moved meanwhile.
	Get(ctx context.Context, id ID) (Object, error)
	// Delete removes the object. A pinned object is not deleted: ErrPinned.
	Delete(ctx context.Context, id ID) error
	// ObjectInfo returns the object's metadata without reading its bytes.
	ObjectInfo(ctx context.Context, id ID) (ObjectInfo, error)

	// OpenReader streams length bytes of the object from offset (length -1: to
	// the end), reading only that range. A range outside the object is an error
	// wrapping ErrInvalidArgument. The Reader's Info is the metadata of the
	// object whose bytes it reads, so no ObjectInfo call (and no race with a
	// delete and a new put under the same ID) is needed.
	OpenReader(ctx context.Context, id ID, offset, length int64) (Reader, error)
	// OpenWriter starts a streamed write of exactly size bytes. The object is
	// published by Close and only if exactly size bytes were written and ctx is
	// still live; Abort, a cancelled ctx or a wrong byte count leave nothing.
	OpenWriter(ctx context.Context, id ID, size int64, opts PutOptions) (Writer, error)

	// List returns objects in ascending ID order, after opts.After, at most
	// opts.Limit of them (0: DefaultListLimit), whose IDs start with opts.Prefix.
	List(ctx context.Context, opts ListOptions) ([]ObjectInfo, error)

	// Pin adds one to the object's pin count. A pinned object is never spilled,
	// evicted or deleted. Pins are counted: n Pins need n Unpins.
	Pin(ctx context.Context, id ID) error
	// Unpin takes one from the pin count; unpinning an object with no pins is
	// an error wrapping ErrNotPinned.
	Unpin(ctx context.Context, id ID) error
	// Prefetch makes the object ready in the fastest place this backend can put
	// it and returns when it is there. For a single tier it only checks that the
	// object exists.
	Prefetch(ctx context.Context, id ID) error

	// Stats reports capacity, usage and object counts.
	Stats(ctx context.Context) (Stats, error)
}

// Object is the result of Get: an object's bytes and metadata, valid until Close.
type Object interface {
	io.ReaderAt
	io.Closer
	// Info is the object's metadata at the time of Get.
	Info() ObjectInfo
	// Bytes returns the whole object. The slice aliases the tier's memory where
	// the tier is zero-copy: it must not be written to, nor used after Close.
	Bytes() []byte
}

// Reader is the result of OpenReader: a stream of the requested range and the
// metadata of exactly the object it reads.
type Reader interface {
	io.ReadCloser
	// Info is the object's metadata at the time OpenReader opened it.
	Info() ObjectInfo
}

// NewReader returns a Reader that reads rc and reports info, for tiers whose
// stream has no metadata of its own.
func NewReader(rc io.ReadCloser, info ObjectInfo) Reader { return &infoReader{rc, info} }

type infoReader struct {
	io.ReadCloser
	info ObjectInfo
}

func (r *infoReader) Info() ObjectInfo { return r.info }

// Writer is a streamed write started by OpenWriter.
type Writer interface {
	io.Writer
	// Close publishes the object if exactly the declared size was written and
	// the writer's context is live; otherwise it discards what was written and
	// returns an error. After Close, Abort is a no-op.
	Close() error
	// Abort discards what was written. It is safe to call after Close.
	Abort() error
}

// ObjectInfo is an object's metadata.
type ObjectInfo struct {
	ID   ID    `json:"id"`
	Size int64 `json:"size"`
	// Level is the level the object is stored at; Tier names the tier.
	Level levels.Level `json:"level"`
	Tier  string       `json:"tier"`
	// Importance orders objects for spilling: the least important move down first.
	Importance int `json:"importance"`
	// Pins is the current pin count (pins are not persisted across restarts).
	Pins     int       `json:"pins"`
	Created  time.Time `json:"created"`
	Accessed time.Time `json:"accessed"`
	// Checksum is the CRC-32C (Castagnoli) of the object's bytes.
	Checksum uint32 `json:"checksum"`
}

// PutOptions are the options of Put and OpenWriter.
type PutOptions struct {
	// Importance orders objects for spilling; higher stays in faster tiers longer.
	Importance int
	// Checksum, when non-zero, is the CRC-32C the caller expects: the tier
	// verifies the bytes against it and fails with ErrCorrupt on a mismatch,
	// storing nothing. The stack uses it to verify a copy when moving objects.
	Checksum uint32
	// Created, when non-zero, is kept as the object's creation time (objects keep
	// it when they move between tiers); zero means now.
	Created time.Time
}

// DefaultListLimit is the page size of List when ListOptions.Limit is 0.
const DefaultListLimit = 1000

// ListOptions select a page of List.
type ListOptions struct {
	Prefix string
	// After is the last ID of the previous page; empty starts at the beginning.
	After ID
	// Limit is the most objects returned; 0 means DefaultListLimit.
	Limit int
}

// Stats reports a backend's usage. For a stack, Tiers holds each tier's own.
type Stats struct {
	Tier     string       `json:"tier"`
	Level    levels.Level `json:"level"`
	Capacity int64        `json:"capacity"`
	Used     int64        `json:"used"`
	Objects  int64        `json:"objects"`
	// Pinned is the bytes held by pinned objects; PinnedObjects their count.
	Pinned        int64   `json:"pinned"`
	PinnedObjects int64   `json:"pinned_objects"`
	Tiers         []Stats `json:"tiers,omitempty"`
}

// Free returns the bytes not used, never negative.
func (s Stats) Free() int64 {
	if f := s.Capacity - s.Used; f > 0 {
		return f
	}
	return 0
}
