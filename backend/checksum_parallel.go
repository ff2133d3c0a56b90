package backend

import "sync"

// Sizes from which CopyChecksumParallel and ChecksumParallel split their
// work: below ParallelMin starting goroutines costs more than it saves, and
// each goroutine takes at least ParallelChunk bytes.
const (
	ParallelMin   = 2 << 20
	ParallelChunk = 1 << 20
)

// CopyChecksumParallel copies src into dst (of the same length) and returns
// the CRC-32C of the bytes, splitting a large copy among up to threads
// goroutines, each copying and checksumming its part, and combining the
// parts' checksums: one core's copy does not saturate the memory bus.
func CopyChecksumParallel(dst, src []byte, threads int) uint32 {
	return parallel(len(src), threads, func(lo, hi int) uint32 {
		_, crc := CopyChecksum(dst[lo:hi], src[lo:hi])
		return crc
	})
}

// ChecksumParallel returns the CRC-32C of b, computed by up to threads
// goroutines for a large b.
func ChecksumParallel(b []byte, threads int) uint32 {
	return parallel(len(b), threads, func(lo, hi int) uint32 { return Checksum(b[lo:hi]) })
}

// parallel runs part over page-aligned parts of [0, n) on up to threads
// goroutines and combines the parts' checksums in order.
func parallel(n, threads int, part func(lo, hi int) uint32) uint32 {
	k := min(threads, n/ParallelChunk)
	if n < ParallelMin || k < 2 {
		return part(0, n)
	}
	size := (n/k + 4095) &^ 4095 // the last part takes the rest
	bounds := func(i int) (int, int) {
		if i == k-1 {
			return i * size, n
		}
		return i * size, (i + 1) * size
	}
	crcs := make([]uint32, k)
	var wg sync.WaitGroup
	for i := 1; i < k; i++ {
		lo, hi := bounds(i)
		wg.Go(func() { crcs[i] = part(lo, hi) })
	}
	lo, hi := bounds(0)
	crcs[0] = part(lo, hi)
	wg.Wait()
	crc := crcs[0]
	for i := 1; i < k; i++ {
		lo, hi := bounds(i)
		crc = CombineChecksum(crc, crcs[i], int64(hi-lo))
	}
	return crc
}
