// Package ceph is distore's Remote tier on Ceph RADOS through go-ceph's rados
// binding (cgo, librados). It is built only with the build tag "ceph"
// (go build -tags ceph) and registers itself as "ceph":
//
//	import _ "distore/remote/ceph"
//	b, err := backend.Open(ctx, "ceph", backend.Config{
//		"conf": "/etc/ceph/ceph.conf", "pool": "distore"})
//
// Layout in the pool (and namespace): an object of up to stripe_size bytes
// is one RADOS object named by its ID, holding the bytes and, in the xattr
// "distore", its metadata (size, importance, creation time, CRC-32C, stripe
// count). A larger object is striped over RADOS objects
// ".d.<id>.<token>.<n>" of stripe_size bytes each, and its manifest object
// (named by the ID, no bytes, the same xattr) is created last, exclusively,
// so publishing is atomic and a second writer of the ID gets ErrExists.
// Names that start with '.' are never IDs, so stripes never show in List.
// A failed or aborted write removes the stripes it wrote.
//
// Options (backend.Config):
//
//	conf         path of ceph.conf (required; its keyring is used)
//	user         the client's name without "client." (default "admin")
//	pool         the RADOS pool (required; it must exist)
//	namespace    a RADOS namespace inside the pool (default "")
//	stripe_size  bytes per RADOS object (default 64MiB, at most 90MiB: below
//	             osd_max_write_size and osd_max_object_size)
//	chunk_size   the unit of streamed reads and writes (default 8MiB; divides stripe_size)
//	concurrency  chunks or stripes in flight per operation (default 4)
//	capacity     optional byte limit (default: unbounded)
//	timeout      bound on connecting and on each monitor operation (default 10s)
//	op_timeout   bound on each OSD operation (default 60s)
//
// Streams use (concurrency+1) × chunk_size bytes of memory whatever the
// object's size; range reads touch only the stripes that hold the range.
// Pins are in-process counters kept by the tier's wrapper (backend.Wrap);
// Stats counts the namespace at Setup and then
// follows this process's writes and deletes. List reads the namespace's
// object names and sorts them: RADOS lists in hash order.
package ceph
