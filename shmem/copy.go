package shmem

import (
	"sync"

	"distore/backend"
)

// parallelMin is the smallest object copied by several goroutines; each takes
// at least parallelChunk bytes. Below it, starting goroutines costs more than
// it saves.
const (
	parallelMin   = 2 << 20
	parallelChunk = 1 << 20
)

// copyChecksum copies src into dst (of the same length) and returns the
// CRC-32C of the bytes, in one pass over them. Large objects are split among
// up to threads goroutines, each copying and checksumming its part, and the
// parts' checksums are combined: one core's copy() does not saturate the
// memory bus (Plasma copied large objects with several threads for the same
// reason).
func copyChecksum(dst, src []byte, threads int) uint32 {
	n := len(src)
	k := min(threads, n/parallelChunk)
	if n < parallelMin || k < 2 {
		_, crc := backend.CopyChecksum(dst, src)
		return crc
	}
	part := (n/k + 4095) &^ 4095 // page-aligned parts; the last one takes the rest
	bounds := func(i int) (lo, hi int) {
		if i == k-1 {
			return i * part, n
		}
		return i * part, (i + 1) * part
	}
	crcs := make([]uint32, k)
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		lo, hi := bounds(i)
		wg.Go(func() { _, crcs[i] = backend.CopyChecksum(dst[lo:hi], src[lo:hi]) })
	}
	_, crcs[0] = backend.CopyChecksum(dst[:part], src[:part])
	wg.Wait()
	crc := crcs[0]
	for i := 1; i < k; i++ {
		lo, hi := bounds(i)
		crc = backend.CombineChecksum(crc, crcs[i], int64(hi-lo))
	}
	return crc
}
