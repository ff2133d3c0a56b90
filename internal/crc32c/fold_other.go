//go:build !amd64

package crc32c

// Only amd64 has the folding kernel; elsewhere hash/crc32 does the work
// (it uses the CRC32 instructions of arm64 itself).
const useFold = false

func fold(dst, src *byte, n int, s uint32, mode int) (lo, hi uint64) {
	panic("crc32c: no folding kernel on this architecture")
}

func uintptrOf([]byte) uintptr { return 0 }

func hybridKernel(dst, src *byte, k, s int, crc uint32, keys *[12]uint64, shiftKey uint32, copy bool) uint32 {
	panic("crc32c: no hybrid kernel on this architecture")
}
