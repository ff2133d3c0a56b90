package shmem

import "distore/backend"

// parallelMin is the smallest object copied by several goroutines.
const parallelMin = backend.ParallelMin

// copyChecksum copies src into dst (of the same length) and returns the
// CRC-32C of the bytes, in one pass over them, large objects split among up
// to threads goroutines (Plasma copied large objects with several threads
// for the same reason: one core's copy() does not saturate the memory bus).
func copyChecksum(dst, src []byte, threads int) uint32 {
	return backend.CopyChecksumParallel(dst, src, threads)
}
